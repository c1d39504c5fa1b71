package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	"github.com/lightningcaddy/caddy-lightning/internal/redistest"
	"github.com/lightningcaddy/caddy-lightning/l402"
)

// overspendClients is how many clients at once spend one payment in the
// overspend checks.
const overspendClients = 32

// overspendPayments is how many per_request payments an overspend check
// buys, each presented by every client at once.
const overspendPayments = 16

// prepaidCredit is what each prepaid credential of the throughput rounds
// holds: more than any run draws.
const prepaidCredit = 1_000_000_000

// sellingMode is how a minted credential was sold.
type sellingMode struct {
	service string
	price   int64
	mode    string // "" for a pass
}

var (
	freshPass  = sellingMode{service: freshService, price: paywallPrice}
	perRequest = sellingMode{service: onceService, price: perRequestPrice, mode: "per_request"}
	prepaid    = sellingMode{service: balanceService, price: prepaidCredit, mode: "prepaid"}
)

// mintFresh makes a credential for a payment of its own (a random
// preimage), as the paywall of m would sell it: every caveat of
// challenge.go and selling.go.
func (b *bench) mintFresh(m sellingMode) (string, error) {
	var preimage [32]byte
	if _, err := rand.Read(preimage[:]); err != nil {
		return "", err
	}
	hash := sha256.Sum256(preimage[:])
	now := time.Now()
	caveats := []l402.Caveat{
		l402.ServicesCaveat(l402.Service{Name: m.service}),
		l402.ValidUntilCaveat(m.service, now.Add(time.Hour)),
		l402.IssuedAtCaveat(m.service, now),
		l402.PriceCaveat(m.service, m.price),
	}
	if m.mode != "" {
		caveats = append(caveats, l402.Caveat{Key: m.service + "_mode", Value: m.mode})
	}
	if m.mode == "prepaid" {
		caveats = append(caveats, l402.Caveat{Key: m.service + "_account", Value: hex.EncodeToString(hash[:])})
	}
	token, _, err := b.keys.Mint(hash, caveats...)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return "L402 " + token + ":" + hex.EncodeToString(preimage[:]), nil
}

// mintMany mints n fresh credentials of m, on every core.
func (b *bench) mintMany(ctx context.Context, n int, m sellingMode) ([]string, error) {
	out := make([]string, n)
	err := forEach(ctx, n, runtime.NumCPU(), func(_ context.Context, i int) error {
		var err error
		out[i], err = b.mintFresh(m)
		return err
	})
	return out, err
}

// freshCredentials hands out each credential once.
type freshCredentials struct {
	values []string
	next   atomic.Int64
}

func (f *freshCredentials) take() (string, error) {
	i := f.next.Add(1) - 1
	if i >= int64(len(f.values)) {
		return "", errors.New("out of fresh credentials: raise --sell-round-requests' share or lower --rounds")
	}
	return f.values[i], nil
}

// selling compares, interleaved, /plain/ with a pass whose credential is
// remembered (/paid/), a pass seeing a fresh credential on every request
// (/fresh/), per_request with a fresh payment on every request (/once/)
// and prepaid drawing 1 sat from remembered credentials (/bal/), all on
// the embedded ledger; then it checks, with real payments and 32 clients
// at once, that exactly what was paid is admitted.
func (b *bench) selling(ctx context.Context) error {
	o := b.opts
	need := (o.rounds + 1) * int(o.sellRoundRequests)
	b.progress("selling: minting %d fresh pass and %d per_request credentials", need, need)
	fresh, err := b.mintMany(ctx, need, freshPass)
	if err != nil {
		return err
	}
	once, err := b.mintMany(ctx, need, perRequest)
	if err != nil {
		return err
	}
	balances, err := b.mintMany(ctx, o.concurrency, prepaid)
	if err != nil {
		return err
	}
	if len(b.prepaid) == 0 {
		return errors.New("selling: no paid invoice")
	}
	pass, err := b.mint(b.prepaid[0], true)
	if err != nil {
		return err
	}
	passAuthz := pass.authorization()
	freshCreds, onceCreds := &freshCredentials{values: fresh}, &freshCredentials{values: once}

	plain := &scenario{name: "plain", do: func(ctx context.Context, w int, _ int64) error {
		return b.get(ctx, "/plain/item", "", "", http.StatusOK, upstreamBodySize)
	}}
	passScenario := &scenario{name: "pass", do: func(ctx context.Context, w int, _ int64) error {
		return b.get(ctx, "/paid/item", passAuthz, "", http.StatusOK, upstreamBodySize)
	}}
	freshScenario := &scenario{name: "pass-fresh", do: func(ctx context.Context, w int, _ int64) error {
		authz, err := freshCreds.take()
		if err != nil {
			return err
		}
		return b.get(ctx, "/fresh/item", authz, "", http.StatusOK, upstreamBodySize)
	}}
	onceScenario := &scenario{name: "per_request", do: func(ctx context.Context, w int, _ int64) error {
		authz, err := onceCreds.take()
		if err != nil {
			return err
		}
		return b.get(ctx, "/once/item", authz, "", http.StatusOK, upstreamBodySize)
	}}
	prepaidScenario := b.prepaidScenario("prepaid", balances)

	b.progress("selling: warming up, then %d interleaved rounds of up to %s or %d requests each (plain, pass, pass-fresh, per_request, prepaid)",
		o.rounds, o.roundTime, o.sellRoundRequests)
	scenarios := []*scenario{plain, passScenario, freshScenario, onceScenario, prepaidScenario}
	if err := b.interleave(ctx, o.concurrency, 1, o.warmup, o.sellRoundRequests, scenarios); err != nil {
		return err
	}
	if err := b.interleave(ctx, o.concurrency, o.rounds, o.roundTime, o.sellRoundRequests, scenarios); err != nil {
		return err
	}
	b.res.sellPlain, b.res.sellPass, b.res.sellFresh = plain.result, passScenario.result, freshScenario.result
	b.res.sellOnce, b.res.sellPrepaid = onceScenario.result, prepaidScenario.result

	b.progress("selling: overspend on one instance: %d clients at once on a paid balance and on %d paid per_request payments", overspendClients, overspendPayments)
	if b.res.overspendOne, err = b.overspend(ctx, []string{b.base}); err != nil {
		return err
	}
	b.res.ran["selling"] = true
	return nil
}

// prepaidScenario draws 1 sat per request from one credential per worker.
func (b *bench) prepaidScenario(name string, balances []string) *scenario {
	return &scenario{name: name, do: func(ctx context.Context, w int, _ int64) error {
		return b.get(ctx, "/bal/item", balances[w%len(balances)], "", http.StatusOK, upstreamBodySize)
	}}
}

// redis runs Redis on loopback, reloads Caddy with the Redis ledger and
// compares /plain/ with prepaid requests on it, interleaved, counting the
// Redis commands and round trips per prepaid request; then it starts two
// Caddy processes (cmd/caddy) sharing that Redis and checks that they
// admit exactly what was paid.
func (b *bench) redis(ctx context.Context) error {
	o := b.opts
	srv, err := redistest.Run(redistest.Options{})
	if err != nil {
		return err
	}
	defer srv.Stop()
	stats := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer stats.Close()
	ledger := fmt.Sprintf("\t\tledger redis {\n\t\t\turl %s\n\t\t}", srv.URL)
	if err := startCaddy(b.config(ledger)); err != nil {
		return err
	}
	b.client.CloseIdleConnections() // the old config's server closes them
	balances, err := b.mintMany(ctx, o.concurrency, prepaid)
	if err != nil {
		return err
	}
	plain := &scenario{name: "plain", do: func(ctx context.Context, w int, _ int64) error {
		return b.get(ctx, "/plain/item", "", "", http.StatusOK, upstreamBodySize)
	}}
	prepaidRedis := b.prepaidScenario("prepaid-redis", balances)
	for _, authz := range balances { // credit each balance, off the measure
		if err := b.get(ctx, "/bal/first", authz, "", http.StatusOK, upstreamBodySize); err != nil {
			return err
		}
	}
	b.progress("redis: warming up, then %d interleaved rounds of up to %s or %d requests each (plain, prepaid on Redis)", o.rounds, o.roundTime, o.roundRequests)
	scenarios := []*scenario{plain, prepaidRedis}
	if err := b.interleave(ctx, o.concurrency, 1, o.warmup, 0, scenarios); err != nil {
		return err
	}
	before, err := redistest.Commands(ctx, stats)
	if err != nil {
		return err
	}
	readsBefore, err := redistest.ReadEvents(ctx, stats)
	if err != nil {
		return err
	}
	if err := b.interleave(ctx, o.concurrency, o.rounds, o.roundTime, o.roundRequests, scenarios); err != nil {
		return err
	}
	after, err := redistest.Commands(ctx, stats)
	if err != nil {
		return err
	}
	readsAfter, err := redistest.ReadEvents(ctx, stats)
	if err != nil {
		return err
	}
	b.res.redisPlain, b.res.redisPrepaid = plain.result, prepaidRedis.result
	requests := float64(prepaidRedis.result.requests)
	b.res.redisCommands = ratio(float64(after-before), requests)
	b.res.redisRoundTrips = ratio(float64(readsAfter-readsBefore-2), requests) // less the two INFO calls that end the count

	b.progress("redis: starting two Caddy processes on the Redis ledger")
	instances, stop, err := b.startInstances(ctx, 2, ledger)
	if err != nil {
		return err
	}
	defer stop()
	b.progress("redis: overspend on two instances: %d clients at once on a paid balance and on %d paid per_request payments", overspendClients, overspendPayments)
	if b.res.overspendTwo, err = b.overspend(ctx, instances); err != nil {
		return err
	}
	b.res.ran["redis"] = true
	return nil
}

// overspendResult is what an overspend check paid for and what it was
// admitted.
type overspendResult struct {
	instances                      int
	balancePaid, balanceAdmitted   int64 // requests a paid balance covers, and admitted
	perRequestPaid, perRequestUsed int64 // per_request payments, and requests admitted with them
	requests                       int64
}

// ok reports whether exactly what was paid was admitted.
func (r overspendResult) ok() bool {
	return r.balancePaid > 0 && r.balanceAdmitted == r.balancePaid && r.perRequestPaid > 0 && r.perRequestUsed == r.perRequestPaid
}

// overspend buys, with real payments from bob, a prepaid balance and
// overspendPayments per_request payments through the instances, then has
// overspendClients clients (spread over the instances) spend each at
// once: every client draws from the balance until refused, and every
// client presents each per_request payment once.
func (b *bench) overspend(ctx context.Context, instances []string) (overspendResult, error) {
	res := overspendResult{instances: len(instances)}
	balance, err := b.buyAt(ctx, instances[0]+"/bal/buy")
	if err != nil {
		return res, err
	}
	res.balancePaid = balanceSold / balancePrice
	var admitted, requests atomic.Int64
	err = forEach(ctx, overspendClients, overspendClients, func(ctx context.Context, c int) error {
		base := instances[c%len(instances)]
		for {
			requests.Add(1)
			status, err := b.status(ctx, base+"/bal/spend", balance)
			switch {
			case err != nil:
				return err
			case status == http.StatusPaymentRequired:
				return nil
			case status != http.StatusOK:
				return fmt.Errorf("overspend: /bal/ on %s: HTTP %d", base, status)
			}
			admitted.Add(1)
		}
	})
	if err != nil {
		return res, err
	}
	res.balanceAdmitted = admitted.Load()

	payments := make([]string, overspendPayments)
	if err := forEach(ctx, overspendPayments, 4, func(ctx context.Context, i int) error {
		var err error
		payments[i], err = b.buyAt(ctx, instances[i%len(instances)]+"/once/buy")
		return err
	}); err != nil {
		return res, err
	}
	res.perRequestPaid = overspendPayments
	admitted.Store(0)
	for _, authz := range payments {
		err := forEach(ctx, overspendClients, overspendClients, func(ctx context.Context, c int) error {
			requests.Add(1)
			base := instances[c%len(instances)]
			switch status, err := b.status(ctx, base+"/once/use", authz); {
			case err != nil:
				return err
			case status == http.StatusOK:
				admitted.Add(1)
			case status != http.StatusPaymentRequired:
				return fmt.Errorf("overspend: /once/ on %s: HTTP %d", base, status)
			}
			return nil
		})
		if err != nil {
			return res, err
		}
	}
	res.perRequestUsed, res.requests = admitted.Load(), requests.Load()
	return res, nil
}

// buyAt gets a 402 from url and has bob pay its invoice: the credential.
func (b *bench) buyAt(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	var c challengeAnswer
	switch {
	case err != nil:
		return "", err
	case resp.StatusCode != http.StatusPaymentRequired:
		return "", fmt.Errorf("buy at %s: HTTP %d, want 402", url, resp.StatusCode)
	case json.Unmarshal(body, &c) != nil:
		return "", fmt.Errorf("buy at %s: not a challenge: %.200s", url, body)
	}
	preimage, err := b.network.Bob.PayInvoice(ctx, c.Invoice)
	if err != nil {
		return "", err
	}
	return "L402 " + c.Token + ":" + hex.EncodeToString(preimage), nil
}

// status sends a GET with a credential and returns the answer's status.
func (b *bench) status(ctx context.Context, url, authz string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// startInstances builds cmd/caddy and starts n Caddy processes with the
// benchmark's configuration and ledger, each on its own port and storage
// (the root key is in the configuration), and returns their base URLs
// and a function that stops them.
func (b *bench) startInstances(ctx context.Context, n int, ledger string) ([]string, func(), error) {
	dir := filepath.Join(b.dir, "instances")
	bin := filepath.Join(dir, "caddy")
	began := time.Now()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/lightningcaddy/caddy-lightning/cmd/caddy")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("build cmd/caddy: %w\n%s", err, out)
	}
	b.progress("redis: built cmd/caddy in %s", time.Since(began).Round(100*time.Millisecond))
	var cmds []*exec.Cmd
	var wg sync.WaitGroup
	stop := func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		wg.Wait()
	}
	var bases []string
	for i := range n {
		port, err := caddyrun.FreePort()
		if err != nil {
			stop()
			return nil, nil, err
		}
		idir := filepath.Join(dir, fmt.Sprint(i))
		if err := os.MkdirAll(idir, 0o755); err != nil {
			stop()
			return nil, nil, err
		}
		cfgPath := filepath.Join(idir, "Caddyfile")
		cfg := caddyfile(idir, filepath.Join(idir, "caddy.log"), port, b.network.Alice, b.upstream, b.rootKey, ledger)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			stop()
			return nil, nil, err
		}
		cmd := exec.Command(bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
		cmd.Env = append(os.Environ(), "HOME="+idir, "XDG_DATA_HOME="+idir, "XDG_CONFIG_HOME="+idir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			stop()
			return nil, nil, fmt.Errorf("start instance %d: %w", i, err)
		}
		cmds = append(cmds, cmd)
		wg.Go(func() { _ = cmd.Wait() })
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if status, err := b.status(ctx, base+"/plain/ready", ""); err == nil && status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				stop()
				return nil, nil, fmt.Errorf("instance %d did not start (log: %s)", i, filepath.Join(idir, "caddy.log"))
			}
		}
		bases = append(bases, base)
	}
	return bases, stop, nil
}
