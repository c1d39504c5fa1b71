package regtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
)

// network is shared by the tests of this package; nil under -short.
var network *Network

func TestMain(m *testing.M) {
	os.Exit(RunTests(m, func(n *Network) { network = n }))
}

func needNetwork(t *testing.T) {
	t.Helper()
	if network == nil {
		t.Skip("needs the regtest network; not started under -short")
	}
}

func TestPayBothWays(t *testing.T) {
	needNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, pair := range [][2]*Node{{network.Alice, network.Bob}, {network.Bob, network.Alice}} {
		from, to := pair[0], pair[1]
		t.Run(from.Name+"->"+to.Name, func(t *testing.T) {
			// Use a separately dialed connection, as a package under test would.
			conn, err := to.Dial(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ln := lnrpc.NewLightningClient(conn)
			inv, err := ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 21_000, Memo: "test"})
			if err != nil {
				t.Fatal(err)
			}
			preimage, err := from.PayInvoice(ctx, inv.PaymentRequest)
			if err != nil {
				t.Fatal(err)
			}
			if hash := sha256.Sum256(preimage); !bytes.Equal(hash[:], inv.RHash) {
				t.Fatalf("preimage %x does not hash to %x", preimage, inv.RHash)
			}
			got, err := ln.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: inv.RHash})
			if err != nil {
				t.Fatal(err)
			}
			if got.State != lnrpc.Invoice_SETTLED {
				t.Fatalf("invoice state %s, want SETTLED", got.State)
			}
		})
	}
}

func TestLncliAndMine(t *testing.T) {
	needNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	getinfo := func() (info struct {
		IdentityPubkey string `json:"identity_pubkey"`
		BlockHeight    int64  `json:"block_height"`
	}) {
		out, err := network.Bob.Lncli(ctx, "getinfo")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatalf("lncli getinfo: %v\n%s", err, out)
		}
		return info
	}
	before := getinfo()
	if before.IdentityPubkey != network.Bob.Pubkey {
		t.Errorf("lncli pubkey %s, want %s", before.IdentityPubkey, network.Bob.Pubkey)
	}
	if err := network.Mine(3); err != nil {
		t.Fatal(err)
	}
	if after := getinfo(); after.BlockHeight != before.BlockHeight+3 {
		t.Errorf("height %d after mining 3 on %d", after.BlockHeight, before.BlockHeight)
	}
}

func TestWriteJSON(t *testing.T) {
	needNetwork(t)
	path := filepath.Join(t.TempDir(), "network.json")
	if err := network.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Alice, Bob map[string]string
		Bin        map[string]string
		Network    string
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Network != "regtest" {
		t.Errorf("network %q", got.Network)
	}
	for _, c := range []struct {
		json map[string]string
		node *Node
	}{{got.Alice, network.Alice}, {got.Bob, network.Bob}} {
		want := map[string]string{
			"grpc": c.node.GRPCAddr, "tls_cert": c.node.TLSCertPath, "macaroon": c.node.MacaroonPath,
			"pubkey": c.node.Pubkey, "lnddir": c.node.LndDir,
		}
		for k, v := range want {
			if c.json[k] != v || v == "" {
				t.Errorf("%s.%s = %q, want %q", c.node.Name, k, c.json[k], v)
			}
		}
		for _, f := range []string{c.json["tls_cert"], c.json["macaroon"]} {
			if _, err := os.Stat(f); err != nil {
				t.Error(err)
			}
		}
	}
	for _, name := range []string{"lncli", "btcctl"} {
		if _, err := os.Stat(got.Bin[name]); err != nil {
			t.Errorf("bin.%s: %v", name, err)
		}
	}
}

// TestStopLeavesNoProcess starts a second network next to the shared one
// and checks that Stop ends all of its processes and removes its directory.
func TestStopLeavesNoProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a regtest network")
	}
	n, err := Start(context.Background(), Options{Log: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	pids := []int{n.backend.proc.cmd.Process.Pid, n.Alice.proc.cmd.Process.Pid, n.Bob.proc.cmd.Process.Pid}
	if got := processesUnder(t, n.Dir); len(got) != 3 {
		t.Errorf("%d processes use %s before Stop, want 3: %v", len(got), n.Dir, got)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	for _, pid := range pids {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("process %d still exists", pid)
		}
	}
	if got := processesUnder(t, n.Dir); len(got) != 0 {
		t.Errorf("processes still use %s: %v", n.Dir, got)
	}
	if _, err := os.Stat(n.Dir); !os.IsNotExist(err) {
		t.Errorf("temporary dir %s not removed: %v", n.Dir, err)
	}
}

// processesUnder returns the pids of processes whose command line mentions
// dir.
func processesUnder(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(dir+"/")) {
			pids = append(pids, pid)
		}
	}
	return pids
}
