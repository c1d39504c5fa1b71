package lightning

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// TestPaidAnswersStayPrivate: whatever the upstream (reverse_proxy or
// file_server) says about caching, a paid answer reaches no shared cache:
// Cache-Control is private unless the upstream said something stricter,
// and Vary covers the credential headers beside the upstream's own.
func TestPaidAnswersStayPrivate(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/proxy/public":
			w.Header().Set("Cache-Control", "public, max-age=600, s-maxage=3600")
			w.Header().Set("Vary", "Accept-Encoding")
		case "/proxy/no-store":
			w.Header().Set("Cache-Control", "no-store")
		case "/proxy/private-field":
			w.Header().Set("Cache-Control", `private="Set-Cookie", max-age=60`)
		case "/proxy/vary-star":
			w.Header().Set("Vary", "*")
		}
		fmt.Fprint(w, "paid content")
	}))
	t.Cleanup(upstream.Close)
	files := t.TempDir()
	if err := os.MkdirAll(filepath.Join(files, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(files, "files", "book.pdf"), []byte("the book"), 0o644); err != nil {
		t.Fatal(err)
	}
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), fmt.Sprintf(`	route /proxy/* {
		paywall 100 {
			service shop
		}
		reverse_proxy %s
	}
	route /files/* {
		paywall 100 {
			service shop
		}
		root * %s
		file_server
	}`, strings.TrimPrefix(upstream.URL, "http://"), files))

	c := getChallenge(t, base+"/proxy/public", nil, http.StatusPaymentRequired)
	paid := auth(l402Auth(c.Body.Token, settleAndProve(t, node, c)))
	for _, tt := range []struct {
		path, cacheControl, vary string
	}{
		{"/proxy/public", "private, max-age=600", "Accept-Encoding, Authorization, Cookie"},
		{"/proxy/no-store", "no-store", "Authorization, Cookie"},
		{"/proxy/private-field", "private, max-age=60", "Authorization, Cookie"},
		{"/proxy/none", "private", "Authorization, Cookie"},
		{"/proxy/vary-star", "private", "*"},
		{"/files/book.pdf", "private", "Accept-Encoding, Authorization, Cookie"}, // file_server varies by encoding
	} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp, body := do(t, method, base+tt.path, paid, nil)
			if resp.StatusCode != http.StatusOK || method == http.MethodGet && !strings.HasPrefix(body, "paid content") && body != "the book" {
				t.Fatalf("%s %s: %d %q", method, tt.path, resp.StatusCode, body)
			}
			if got := strings.Join(resp.Header.Values("Cache-Control"), ", "); got != tt.cacheControl {
				t.Errorf("%s %s: Cache-Control %q, want %q", method, tt.path, got, tt.cacheControl)
			}
			if got := strings.Join(resp.Header.Values("Vary"), ", "); got != tt.vary {
				t.Errorf("%s %s: Vary %q, want %q", method, tt.path, got, tt.vary)
			}
		}
	}
	// A conditional request's 304 says the same.
	resp, _ := get(t, base+"/files/book.pdf", paid)
	conditional := http.Header{"Authorization": paid["Authorization"], "If-None-Match": {resp.Header.Get("Etag")}}
	resp, _ = get(t, base+"/files/book.pdf", conditional)
	if resp.StatusCode != http.StatusNotModified || resp.Header.Get("Cache-Control") != "private" {
		t.Errorf("304: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}

func TestKeepPrivate(t *testing.T) {
	for _, tt := range []struct {
		cacheControl, vary []string
		wantCC, wantVary   string
	}{
		{nil, nil, "private", "Authorization, Cookie"},
		{[]string{"public", "max-age=60"}, []string{"Accept", "Origin"}, "private, max-age=60", "Accept, Origin, Authorization, Cookie"},
		{[]string{"no-cache, PUBLIC, S-MAXAGE=9"}, []string{"cookie"}, "private, no-cache", "cookie, Authorization"},
		{[]string{"No-Store"}, nil, "No-Store", "Authorization, Cookie"},
		{[]string{"private, max-age=5"}, []string{"Authorization, Cookie"}, "private, max-age=5", "Authorization, Cookie"},
	} {
		h := http.Header{}
		for _, v := range tt.cacheControl {
			h.Add("Cache-Control", v)
		}
		for _, v := range tt.vary {
			h.Add("Vary", v)
		}
		keepPrivate(h)
		if got := strings.Join(h.Values("Cache-Control"), ", "); got != tt.wantCC {
			t.Errorf("Cache-Control %q: got %q, want %q", tt.cacheControl, got, tt.wantCC)
		}
		if got := strings.Join(h.Values("Vary"), ", "); got != tt.wantVary {
			t.Errorf("Vary %q: got %q, want %q", tt.vary, got, tt.wantVary)
		}
	}
}
