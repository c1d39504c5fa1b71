package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxResponseBody bounds what the demo reads of a response.
const maxResponseBody = 1 << 20

// exchange is one HTTP request to Caddy and its response.
type exchange struct {
	method, url string
	reqHeader   http.Header // the headers the demo set
	reqBody     []byte
	status      int
	header      http.Header
	body        []byte
	took        time.Duration
}

// send makes an HTTP request to Caddy without printing it.
func (w *walkthrough) send(ctx context.Context, method, path string, header http.Header, body []byte) (*exchange, error) {
	ex := &exchange{method: method, url: w.base + path, reqHeader: header, reqBody: body}
	var reqBody io.Reader
	if body != nil {
		reqBody = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, ex.url, reqBody)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	began := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	ex.body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	ex.took = time.Since(began)
	ex.status, ex.header = resp.StatusCode, resp.Header
	return ex, nil
}

// show prints an exchange.
func (w *walkthrough) show(ex *exchange) {
	w.p.request(ex.method, ex.url, ex.reqHeader, ex.reqBody)
	w.p.response(ex.status, ex.header, ex.body, ex.took)
}

// call makes an HTTP request to Caddy and prints it. A failed request is
// printed as far as it went.
func (w *walkthrough) call(ctx context.Context, method, path string, header http.Header, body []byte) (*exchange, error) {
	ex, err := w.send(ctx, method, path, header, body)
	if err != nil {
		w.p.request(method, w.base+path, header, body)
		return nil, err
	}
	w.show(ex)
	return ex, nil
}

// apiRequest encodes in as the JSON body of POST /v1/lightning/<method>.
func apiRequest(method string, in any) (path string, header http.Header, body []byte, err error) {
	body, err = json.Marshal(in)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%s: encode request: %w", method, err)
	}
	return "/v1/lightning/" + method, http.Header{"Content-Type": {"application/json"}}, body, nil
}

// decodeAPI decodes a 200 answer of the API into out; other statuses are
// errors carrying the API's message.
func decodeAPI(method string, ex *exchange, out any) error {
	if ex.status != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", method, ex.status, strings.TrimSpace(string(ex.body)))
	}
	if err := json.Unmarshal(ex.body, out); err != nil {
		return fmt.Errorf("%s: decode %q: %w", method, ex.body, err)
	}
	return nil
}

// api calls a method of the Lightning API over REST, prints the exchange
// and decodes the answer into out.
func (w *walkthrough) api(ctx context.Context, method string, in, out any) error {
	path, header, body, err := apiRequest(method, in)
	if err != nil {
		return err
	}
	ex, err := w.call(ctx, http.MethodPost, path, header, body)
	if err != nil {
		return err
	}
	return decodeAPI(method, ex, out)
}
