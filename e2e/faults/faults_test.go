// Package faults checks how the API and the paywall behave when the real
// LND node behind them is down, restarts under load, or hangs.
package faults

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
)

var network *regtest.Network // nil under -short

func TestMain(m *testing.M) {
	os.Exit(regtest.RunTests(m, func(n *regtest.Network) { network = n }))
}

// site serves the API and a paywalled route in front of alice, with a
// short node timeout, and returns its base URL.
func site(t *testing.T, storageDir string) string {
	t.Helper()
	port, err := caddyrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	a := network.Alice
	err = caddyrun.Load(fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	storage file_system %s
	lightning {
		%s
	}
}

http://127.0.0.1:%d {
	route /v1/lightning/* {
		lightning
	}
	route /paid/* {
		paywall 10 {
			# Named: the restarted Caddy listens on another port, and a
			# paywall's default service follows its site's address.
			service faults
			invoices_per_client off
			invoices_total off
		}
		respond "content"
	}
}
`, storageDir, a.CaddyLND("timeout 2s"), port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddyrun.Stop() })
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

var client = &http.Client{Timeout: 30 * time.Second}

// get requests url and returns the status, body and time taken.
func get(url, authorization string) (int, string, time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", 0, err
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", time.Since(start), err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), time.Since(start), err
}

// buyToken gets a challenge and has bob pay it; it returns the
// Authorization value that proves the payment.
func buyToken(t *testing.T, base string) string {
	t.Helper()
	code, body, _, err := get(base+"/paid/", "")
	if err != nil || code != http.StatusPaymentRequired {
		t.Fatalf("challenge: %d %s %v", code, body, err)
	}
	var c struct{ Token, Invoice string }
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	preimage, err := network.Bob.PayInvoice(ctx, c.Invoice)
	if err != nil {
		t.Fatal(err)
	}
	return "L402 " + c.Token + ":" + hex.EncodeToString(preimage)
}

func startAlice(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := network.Alice.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestNodeDownAtStartup(t *testing.T) {
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	storage := t.TempDir()
	base := site(t, storage)
	paid := buyToken(t, base)

	if err := network.Alice.Stop(); err != nil {
		t.Fatal(err)
	}
	base = site(t, storage) // Caddy starts with the node down
	code, body, took, err := get(base+"/paid/", paid)
	t.Logf("node down, paid request: %d in %s", code, took)
	if err != nil || code != http.StatusOK || body != "content" {
		t.Errorf("paid request with the node down: %d %q %v", code, body, err)
	}
	code, body, took, err = get(base+"/paid/", "")
	t.Logf("node down, new challenge: %d in %s", code, took)
	if err != nil || code != http.StatusServiceUnavailable || took > 3*time.Second {
		t.Errorf("challenge with the node down: %d %q in %s, want a prompt 503", code, body, took)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/lightning/generateinvoice", strings.NewReader(`{"amount": 5}`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("node down, generateinvoice: %d %s", resp.StatusCode, raw)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(raw), "lnd node unavailable") {
		t.Errorf("generateinvoice with the node down: %d %s", resp.StatusCode, raw)
	}

	startAlice(t)
	recovered := time.Now()
	for {
		code, _, _, _ := get(base+"/paid/", "")
		if code == http.StatusPaymentRequired {
			break
		}
		if time.Since(recovered) > 15*time.Second {
			t.Fatalf("challenges did not recover within 15 s of the node's return (last %d)", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("challenges recovered %s after the node was active again", time.Since(recovered).Round(time.Millisecond))
}

func TestNodeRestartUnderLoad(t *testing.T) {
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	base := site(t, t.TempDir())
	paid := buyToken(t, base)

	var paidOK, paidFailed, paidWhileDown, challenges atomic.Int64
	var down atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 1_000_000; n++ { // the stop channel ends it within seconds
				select {
				case <-stop:
					return
				default:
				}
				code, _, _, err := get(base+"/paid/", paid)
				if err != nil || code != http.StatusOK {
					paidFailed.Add(1)
				} else {
					paidOK.Add(1)
					if down.Load() {
						paidWhileDown.Add(1)
					}
				}
			}
		}()
	}
	var mu sync.Mutex
	statuses := map[int]int{}
	lastFailure := time.Time{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; n < 2000; n++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			code, _, _, _ := get(base+"/paid/", "")
			challenges.Add(1)
			mu.Lock()
			statuses[code]++
			if code != http.StatusPaymentRequired {
				lastFailure = time.Now()
			}
			mu.Unlock()
		}
	}()

	time.Sleep(time.Second)
	down.Store(true)
	if err := network.Alice.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	startAlice(t)
	down.Store(false)
	active := time.Now()
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	recovery := lastFailure.Sub(active)
	t.Logf("paid requests: %d ok (%d while the node was down or starting), %d failed; challenges: %d, statuses %v; "+
		"last failed challenge %s after the node was active",
		paidOK.Load(), paidWhileDown.Load(), paidFailed.Load(), challenges.Load(), statuses, recovery.Round(time.Millisecond))
	if paidWhileDown.Load() == 0 {
		t.Error("no paid request ran while the node was down")
	}
	if paidFailed.Load() != 0 {
		t.Errorf("%d paid requests failed while the node restarted", paidFailed.Load())
	}
	if recovery > 4*time.Second {
		t.Errorf("challenges still failed %s after the node was back", recovery)
	}
	if statuses[http.StatusInternalServerError] != 0 {
		t.Errorf("challenges answered 500: %v", statuses)
	}
}

func TestStuckNode(t *testing.T) {
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	base := site(t, t.TempDir())
	paid := buyToken(t, base)

	if err := network.Alice.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := network.Alice.Thaw(); err != nil {
			t.Error(err)
		}
	}()
	code, _, took, err := get(base+"/paid/", paid)
	t.Logf("stuck node, paid request: %d in %s", code, took)
	if err != nil || code != http.StatusOK {
		t.Errorf("paid request with a stuck node: %d %v", code, err)
	}
	code, body, took, err := get(base+"/paid/", "")
	t.Logf("stuck node, challenge: %d in %s", code, took)
	if err != nil || (code != http.StatusServiceUnavailable && code != http.StatusGatewayTimeout) || took > 5*time.Second {
		t.Errorf("challenge with a stuck node: %d %q in %s, want 503/504 within the 2 s timeout", code, body, took)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/lightning/generateinvoice", strings.NewReader(`{"amount": 5}`))
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("stuck node, generateinvoice: %d in %s: %s", resp.StatusCode, time.Since(start).Round(time.Millisecond), raw)
	if resp.StatusCode != http.StatusGatewayTimeout || time.Since(start) > 5*time.Second {
		t.Errorf("generateinvoice with a stuck node: %d %s", resp.StatusCode, raw)
	}
}
