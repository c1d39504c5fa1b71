package lightning

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// startCaddy runs Caddy in this process with a Caddyfile whose site address
// is {port}-free: it is served on a free loopback port, with the admin API
// off and h2c on, and stopped at the end of the test. It returns the base
// URL.
func startCaddy(t *testing.T, globalOptions, siteBody string) string {
	t.Helper()
	return runCaddy(t, "off", t.TempDir(), globalOptions, siteBody)
}

// startCaddyWithAdmin is startCaddy with the admin API on a free port, and
// storage in storageDir; it returns the site's and the admin API's URLs.
func startCaddyWithAdmin(t *testing.T, storageDir, globalOptions, siteBody string) (site, admin string) {
	t.Helper()
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	return runCaddy(t, adminAddr, storageDir, globalOptions, siteBody), "http://" + adminAddr
}

func runCaddy(t *testing.T, admin, storageDir, globalOptions, siteBody string) string {
	t.Helper()
	port := freePort(t)
	loadCaddyfile(t, testCaddyfile(admin, storageDir, globalOptions, port, siteBody))
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("stop caddy: %v", err)
		}
	})
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// testCaddyfile is the Caddyfile of the tests: the global options and the
// site body, on port, with requests from loopback addresses trusted as a
// proxy's (so X-Forwarded-For and X-Forwarded-Proto count).
func testCaddyfile(admin, storageDir, globalOptions string, port int, siteBody string) string {
	return fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
	storage file_system %s
	servers {
		protocols h1 h2 h2c
		trusted_proxies static 127.0.0.1/32 ::1/128
	}
%s
}

http://127.0.0.1:%d {
%s
}
`, admin, storageDir, globalOptions, port, siteBody)
}

// loadCaddyfile adapts a Caddyfile and runs it, replacing the running
// config (a reload when one runs).
func loadCaddyfile(t *testing.T, caddyfile string) {
	t.Helper()
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatalf("adapt Caddyfile: %v\n%s", err, caddyfile)
	}
	for _, w := range warnings {
		t.Logf("Caddyfile warning: %s", w.String())
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		t.Fatalf("load config: %v", err)
	}
}

// reloadCaddyfile replaces the running config with caddyfile, whose site
// listens on port, and waits until the old config's listener has closed:
// Caddy shuts the old servers down in the background (caddyhttp.App.Stop)
// and, until it has, a new connection can reach the old listener and be
// reset when it closes. It drops the client's idle connections, which the
// old server closes.
func reloadCaddyfile(t *testing.T, caddyfile string, port int) {
	t.Helper()
	loadCaddyfile(t, caddyfile)
	http.DefaultClient.CloseIdleConnections()
	waitFor(t, "the old config's listener to close", func() bool { return listeningSockets(port) <= 1 })
}

// listeningSockets counts the TCP sockets listening on port, as Linux
// lists them in /proc/net (0 where it does not).
func listeningSockets(port int) int {
	n := 0
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		table, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(table)) {
			f := strings.Fields(line)
			if len(f) > 3 && f[3] == "0A" && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) { // 0A: LISTEN
				n++
			}
		}
	}
	return n
}

// lndOption is the lightning global option for a fake node.
func lndOption(node *lndtest.Node) string {
	return fmt.Sprintf(`	lightning {
		lnd {
			address %s
			tls_cert %s
			macaroon %s
		}
	}`, node.Addr(), node.TLSCertPath(), node.MacaroonPath())
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// apiResponse is a decoded JSON answer of the API.
type apiResponse struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// post sends body (a string, or a value to encode as JSON) to url.
func post(t *testing.T, url string, body any) apiResponse {
	t.Helper()
	var payload []byte
	switch b := body.(type) {
	case string:
		payload = []byte(b)
	default:
		var err error
		if payload, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return readResponse(t, resp)
}

func readResponse(t *testing.T, resp *http.Response) apiResponse {
	t.Helper()
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := apiResponse{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			t.Fatalf("decode %q: %v", raw, err)
		}
	}
	return out
}

// wantError checks an error answer in grpc-gateway's shape.
func (r apiResponse) wantError(t *testing.T, httpStatus, grpcCode int, messagePart string) {
	t.Helper()
	if r.Status != httpStatus {
		t.Fatalf("status = %d, want %d; body %s", r.Status, httpStatus, r.Raw)
	}
	if code, _ := r.Body["code"].(float64); int(code) != grpcCode {
		t.Errorf("code = %v, want %d; body %s", r.Body["code"], grpcCode, r.Raw)
	}
	if msg, _ := r.Body["message"].(string); !strings.Contains(msg, messagePart) {
		t.Errorf("message = %q, want it to contain %q", msg, messagePart)
	}
	if details, ok := r.Body["details"].([]any); !ok || len(details) != 0 {
		t.Errorf("details = %v, want []", r.Body["details"])
	}
}

func adaptCaddyfile(input string) ([]byte, []caddyconfig.Warning, error) {
	return caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
}
