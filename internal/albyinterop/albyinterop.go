// Package albyinterop runs the scripts of e2e/paywall/interop for the
// end-to-end tests: Alby's @getalby/lightning-tools, a client this project
// did not write (pinned by that directory's package-lock.json), in Node,
// paying with a regtest node's lnd over its REST API.
package albyinterop

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
)

// Run installs the pinned packages in dir (npm ci) and runs `node script`
// there with env (NAME=value) and the wallet's settings (BOB_REST,
// BOB_MACAROON_HEX, BOB_TLS_CERT: payer's REST API), and returns what the
// script printed. It skips the test when node or npm is missing.
func Run(ctx context.Context, t *testing.T, dir, script string, payer *regtest.Node, env ...string) []byte {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s on PATH", tool)
		}
	}
	npm := exec.CommandContext(ctx, "npm", "ci", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error")
	if out, err := npm.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	mac, err := os.ReadFile(payer.MacaroonPath)
	if err != nil {
		t.Fatal(err)
	}
	node := exec.CommandContext(ctx, "node", script)
	node.Dir = dir
	node.Env = append(append(os.Environ(), env...),
		"BOB_REST="+payer.RESTAddr,
		"BOB_MACAROON_HEX="+hex.EncodeToString(mac),
		"BOB_TLS_CERT="+payer.TLSCertPath,
	)
	var stderr bytes.Buffer
	node.Stderr = &stderr
	out, err := node.Output()
	if err != nil {
		t.Fatal(fmt.Errorf("node %s: %w\n%s%s", script, err, out, stderr.Bytes()))
	}
	return out
}
