package instances

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lightningcaddy/caddy-lightning/internal/redistest"
)

// ledgerSite sells a prepaid balance and per-request payments.
const ledgerSite = `	route /bal/* {
		paywall 1 {
			mode prepaid
			balance 20
			service bal
		}
		respond "balance"
	}
	route /once/* {
		paywall 10 {
			mode per_request
			service once
		}
		respond "once"
	}`

// buyAt gets a challenge from url and pays it from bob: the credential,
// and the payment hash.
func buyAt(t *testing.T, url string) (string, string) {
	t.Helper()
	code, body := request(t, http.MethodGet, url, "", "")
	var c struct {
		Token, Invoice string
		PaymentHash    string `json:"payment_hash"`
	}
	if err := json.Unmarshal([]byte(body), &c); code != http.StatusPaymentRequired || err != nil {
		t.Fatalf("challenge at %s: %d %s", url, code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	preimage, err := network.Bob.PayInvoice(ctx, c.Invoice)
	if err != nil {
		t.Fatal(err)
	}
	return "L402 " + c.Token + ":" + hex.EncodeToString(preimage), c.PaymentHash
}

// spread sends n requests with one credential at once, alternating
// between the instances, and returns how many each admitted.
func spread(t *testing.T, n int, path, authorization string, instances ...instance) map[string]int {
	t.Helper()
	var mu sync.Mutex
	admitted := map[string]int{}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		in := instances[i%len(instances)]
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodGet, in.site+path, nil)
			req.Header.Set("Authorization", authorization)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				mu.Lock()
				admitted[in.name]++
				mu.Unlock()
			case http.StatusPaymentRequired:
			default:
				errs <- fmt.Errorf("%s: status %d", in.name, resp.StatusCode)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return admitted
}

// TestTwoInstancesShareRedis: two Caddy processes with one Redis ledger
// admit exactly what was paid, whichever instance each request reaches:
// on a balance of 20 sats at 1 sat, one request on each instance and then
// 18 of 40 concurrent requests, 1 of 20
// concurrent presentations of a per-request payment.
func TestTwoInstancesShareRedis(t *testing.T) {
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	redis := redistest.Start(t, redistest.Options{Password: "shared-secret"})
	t.Setenv("LEDGER_REDIS_PASSWORD", "shared-secret")
	ledger := fmt.Sprintf("\t\tledger redis {\n\t\t\turl %s\n\t\t\tpassword {env.LEDGER_REDIS_PASSWORD}\n\t\t}", redis.URL)
	bin := buildCaddy(t)
	storage := t.TempDir()
	a := startInstanceWith(t, bin, "A", storage, ledger, ledgerSite)
	b := startInstanceWith(t, bin, "B", storage, ledger, ledgerSite)

	balance, _ := buyAt(t, a.site+"/bal/")
	// One request on each instance first: both draw from the one
	// balance. (Which instance wins the concurrent requests below is up
	// to the scheduler.)
	warm := map[string]int{}
	for _, in := range []instance{a, b} {
		for name, n := range spread(t, 1, "/bal/", balance, in) {
			warm[name] += n
		}
	}
	if warm["A"] != 1 || warm["B"] != 1 {
		t.Fatalf("one request on each instance: admitted %v; want 1 on each", warm)
	}
	admitted := spread(t, 40, "/bal/", balance, a, b)
	t.Logf("balance of 20 at 1 sat, 2 requests then 40 at once over two instances: admitted %v", admitted)
	if admitted["A"]+admitted["B"] != 18 {
		t.Errorf("admitted %v; want the 18 sats left in all", admitted)
	}
	once, _ := buyAt(t, b.site+"/once/")
	admitted = spread(t, 20, "/once/", once, a, b)
	if admitted["A"]+admitted["B"] != 1 {
		t.Errorf("one per-request payment presented 20 times at once over two instances: admitted %v; want 1", admitted)
	}
}

// TestCrashMidBalance: a Caddy process killed (SIGKILL) mid-balance loses
// at most the draws made since the embedded ledger's last flush (the
// documented bound), never the credit; a restart serves the rest.
func TestCrashMidBalance(t *testing.T) {
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
	bin := buildCaddy(t)
	storage := t.TempDir()
	in := startInstanceWith(t, bin, "A", storage, "\t\tledger {\n\t\t\tflush_interval 1s\n\t\t}", ledgerSite)
	balance, hash := buyAt(t, in.site+"/bal/")
	draw := func(in instance) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, in.site+"/bal/", nil)
		req.Header.Set("Authorization", balance)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		left, err := strconv.Atoi(resp.Header.Get("Paywall-Balance"))
		if resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("draw on %s: %d, balance %q", in.name, resp.StatusCode, resp.Header.Get("Paywall-Balance"))
		}
		return left
	}
	for range 5 {
		draw(in)
	}
	// The flusher writes the 5 draws within its interval.
	account := filepath.Join(storage, "lightning", "ledger", "accounts", "prepaid-"+hash+".json")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if raw, _ := os.ReadFile(account); strings.Contains(string(raw), `"spent":5,`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the 5 draws were not written to %s", account)
		}
	}
	const unflushed = 3
	for range unflushed {
		draw(in)
	}
	if err := in.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = in.cmd.Wait()

	restarted := startInstanceWith(t, bin, "A again", storage, "\t\tledger {\n\t\t\tflush_interval 1s\n\t\t}", ledgerSite)
	left := draw(restarted) + 1 // the balance before this draw
	lost := left - (20 - 5 - unflushed)
	t.Logf("killed after %d draws, %d of them after the last observed flush: %d draws lost (balance %d after the restart)", 5+unflushed, unflushed, lost, left)
	if lost < 0 || lost > unflushed {
		t.Errorf("balance %d after the restart: want %d to %d (at most the %d unflushed draws lost, the credit kept)", left, 20-5-unflushed, 20-5, unflushed)
	}
}
