// Package instances runs Caddy processes (cmd/caddy) in front of one LND
// node, as instances behind a load balancer would: two sharing one storage
// directory, two sharing one Redis ledger, and one killed mid-balance.
package instances

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
)

var network *regtest.Network // nil under -short

func TestMain(m *testing.M) {
	os.Exit(regtest.RunTests(m, func(n *regtest.Network) { network = n }))
}

// instance is one Caddy process.
type instance struct {
	name, site, admin string
	cmd               *exec.Cmd
}

// buildCaddy builds cmd/caddy once for the test.
func buildCaddy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "caddy")
	start := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, "github.com/lightningcaddy/caddy-lightning/cmd/caddy").CombinedOutput()
	if err != nil {
		t.Fatalf("build caddy: %v\n%s", err, out)
	}
	t.Logf("built cmd/caddy in %s", time.Since(start).Round(time.Second))
	return bin
}

// sharedSite is the site of TestTwoInstancesShareState: a paywall and
// the Lightning API with a budget; %s is the instance's name.
const sharedSite = `	route /paid/* {
		paywall 20 {
			service shared
		}
		respond "content from %s"
	}
	route /v1/lightning/* {
		lightning {
			max_payment 1000
			max_fee 10
			budget 2500 1h
		}
	}`

// startInstance runs Caddy with storage in storageDir, in front of alice,
// serving sharedSite.
func startInstance(t *testing.T, bin, name, storageDir string) instance {
	t.Helper()
	return startInstanceWith(t, bin, name, storageDir, "", fmt.Sprintf(sharedSite, name))
}

// startInstanceWith runs Caddy with storage in storageDir, in front of
// alice, with the lightning app's extra options and the site body.
func startInstanceWith(t *testing.T, bin, name, storageDir, appOptions, site string) instance {
	t.Helper()
	sitePort, err := caddyrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	adminPort, err := caddyrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	a := network.Alice
	dir := t.TempDir()
	caddyfile := filepath.Join(dir, "Caddyfile")
	err = os.WriteFile(caddyfile, []byte(fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
	storage file_system %s
	lightning {
		%s
		sync_interval 1s
%s
	}
}

http://127.0.0.1:%d {
%s
}
`, adminPort, storageDir, a.CaddyLND(), appOptions, sitePort, site)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		log.Close()
	})
	in := instance{name: name, site: fmt.Sprintf("http://127.0.0.1:%d", sitePort), admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort), cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(in.admin + "/lightning/status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("%s did not start: %v\n%s", name, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func request(t *testing.T, method, url, authorization, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func TestTwoInstancesShareState(t *testing.T) {
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	bin := buildCaddy(t)
	storage := t.TempDir()
	a := startInstance(t, bin, "A", storage)
	b := startInstance(t, bin, "B", storage)

	// Buy on A, use on B.
	code, body := request(t, http.MethodGet, a.site+"/paid/", "", "")
	if code != http.StatusPaymentRequired {
		t.Fatalf("challenge on A: %d %s", code, body)
	}
	var c struct{ Token, Invoice string }
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	preimage, err := network.Bob.PayInvoice(ctx, c.Invoice)
	if err != nil {
		t.Fatal(err)
	}
	paid := "L402 " + c.Token + ":" + hex.EncodeToString(preimage)
	if code, body := request(t, http.MethodGet, b.site+"/paid/", paid, ""); code != http.StatusOK || body != "content from B" {
		t.Fatalf("A's token on B: %d %s", code, body)
	}

	// Revoke on B: refused on A within the sync interval (1 s).
	if code, body := request(t, http.MethodPost, b.admin+"/lightning/revoke", "", `{"token": "`+c.Token+`"}`); code != http.StatusOK {
		t.Fatalf("revoke on B: %d %s", code, body)
	}
	revoked := time.Now()
	for {
		code, _ := request(t, http.MethodGet, a.site+"/paid/", paid, "")
		if code == http.StatusUnauthorized {
			break
		}
		if time.Since(revoked) > 5*time.Second {
			t.Fatalf("A still admits the token revoked on B after %s", time.Since(revoked))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("revocation on B refused on A after %s (sync_interval 1s)", time.Since(revoked).Round(time.Millisecond))

	// The budget (2,500 sats per hour) holds across both: payments of 500
	// (reserving 510 with the fee limit) alternate between A and B.
	conn, err := network.Bob.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bob := lnrpc.NewLightningClient(conn)
	var ok, refused int
	for i := range 8 {
		inv, err := bob.AddInvoice(ctx, &lnrpc.Invoice{Value: 500, Memo: fmt.Sprintf("budget %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		target := []instance{a, b}[i%2]
		code, body := request(t, http.MethodPost, target.site+"/v1/lightning/payinvoice", "", `{"invoice": "`+inv.PaymentRequest+`"}`)
		switch {
		case code == http.StatusOK:
			ok++
		case code == http.StatusTooManyRequests && strings.Contains(body, "budget exhausted"):
			refused++
		default:
			t.Fatalf("payinvoice on %s: %d %s", target.name, code, body)
		}
	}
	t.Logf("budget across instances: %d payments of 500 sats made, %d refused", ok, refused)
	if ok != 4 || refused != 4 {
		t.Errorf("made %d and refused %d payments of 500 within a shared budget of 2,500; want 4 and 4", ok, refused)
	}
}
