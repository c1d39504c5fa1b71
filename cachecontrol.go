package lightning

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// credentialHeaders are the request headers a paid answer depends on.
var credentialHeaders = []string{"Authorization", "Cookie"}

// credentialVary is Vary for an upstream that sets none.
const credentialVary = "Authorization, Cookie"

// paidResponse keeps a paid answer out of shared caches: when the rest of
// the route writes its header, it makes Cache-Control private (unless the
// upstream said no-store or private already) and adds the credential
// headers to Vary. Without it, a CDN in front could store one buyer's
// answer and serve it free to everyone. For a prepaid request it also
// tells the client its balance, and takes a reported cost out of the
// answer (meter).
type paidResponse struct {
	caddyhttp.ResponseWriterWrapper
	wroteHeader bool

	hasBalance    bool   // prepaid: set the balance header
	balance       int64  // what the balance holds after this request
	exposeBalance bool   // to a script of another origin too
	meter         *meter // the upstream reports the cost; nil otherwise

	success       successHeader // a dialect's proof of payment, on 2xx only
	exposeSuccess bool          // to a script of another origin too
}

// successHeader is the header with which a dialect tells a client its
// payment was accepted (Payment-Receipt, PAYMENT-RESPONSE).
type successHeader struct {
	name, value string
}

func (w *paidResponse) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.wroteHeader = true
		h := w.Header()
		if w.meter != nil {
			w.balance = w.meter.header(h, code)
		}
		if w.hasBalance {
			h[balanceHeader] = []string{strconv.FormatInt(w.balance, 10)}
			if w.exposeBalance {
				h.Add("Access-Control-Expose-Headers", balanceHeader)
			}
		}
		if w.success.name != "" && code < 300 {
			h.Set(w.success.name, w.success.value)
			if w.exposeSuccess {
				h.Add("Access-Control-Expose-Headers", w.success.name)
			}
		}
		keepPrivate(h)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *paidResponse) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *paidResponse) ReadFrom(r io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriterWrapper.ReadFrom(r)
}

// keepPrivate makes h's Cache-Control private and its Vary cover the
// credential headers, keeping what the upstream set.
func keepPrivate(h http.Header) {
	// The keys are canonical: map access skips canonicalizing them.
	cc, vary := h["Cache-Control"], h["Vary"]
	if len(cc) == 0 && len(vary) == 0 { // the usual case, in one allocation
		both := []string{"private", credentialVary}
		h["Cache-Control"], h["Vary"] = both[:1:1], both[1:]
		return
	}
	switch {
	case len(cc) == 0:
		h["Cache-Control"] = []string{"private"}
	case !hasDirective(cc, "no-store") && !hasDirective(cc, "private"):
		// public and s-maxage speak to shared caches only: drop them.
		directives := []string{"private"}
		for _, d := range directiveList(cc) {
			name, _, _ := strings.Cut(d, "=")
			if !strings.EqualFold(name, "public") && !strings.EqualFold(name, "s-maxage") && !strings.EqualFold(name, "private") {
				directives = append(directives, d)
			}
		}
		h["Cache-Control"] = []string{strings.Join(directives, ", ")}
	}
	switch {
	case len(vary) == 0:
		h["Vary"] = []string{credentialVary}
		return
	case hasDirective(vary, "*"):
		return
	}
	fields := directiveList(vary)
	changed := false
	for _, c := range credentialHeaders {
		if !hasDirective(vary, c) {
			fields = append(fields, c)
			changed = true
		}
	}
	if changed {
		h["Vary"] = []string{strings.Join(fields, ", ")}
	}
}

// directiveList splits comma-separated header values into their items.
func directiveList(values []string) []string {
	var items []string
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
	}
	return items
}

// hasDirective reports whether the header values list name, in any case
// and without a value: private="Set-Cookie" is not private.
func hasDirective(values []string, name string) bool {
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(item), name) {
				return true
			}
		}
	}
	return false
}
