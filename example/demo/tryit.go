package main

import (
	"regexp"
	"strings"

	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
)

// printTryIt prints what is running and command lines to try by hand:
// lncli for both nodes, and curl for the paywall and the API.
func printTryIt(p *printer, n *regtest.Network, s *site, upstream, jsonPath string, creds credentials) {
	url := s.url
	p.title("Try it yourself")
	p.line("Caddy      %s   (its log: %s)", url, s.logPath)
	p.line("upstream   http://%s   (the premium content behind the paywall)", upstream)
	p.line("alice      %s   lnd gRPC %s, the node behind Caddy", n.Alice.Pubkey, n.Alice.GRPCAddr)
	p.line("bob        %s   lnd gRPC %s, the customer", n.Bob.Pubkey, n.Bob.GRPCAddr)
	p.line("details    %s", jsonPath)

	p.line("\n%s", p.paint(bold, "The nodes, with lncli:"))
	p.line("  %s getinfo", lncli(n.Alice))
	p.line("  %s channelbalance", lncli(n.Bob))

	if creds.ok {
		p.line("\n%s", p.paint(bold, "The walk-through's paid credentials (they open the paywall for an hour):"))
		p.line("  curl -si %s/premium/article -H 'Authorization: L402 %s:%s'", url, creds.token, creds.preimage)
	}

	p.line("\n%s", p.paint(bold, "Paste these two shell functions first; the lines below use them:"))
	p.line("  alice() { %s \"$@\"; }", lncli(n.Alice))
	p.line("  bob() { %s \"$@\"; }", lncli(n.Bob))

	p.line("\n%s", p.paint(bold, "The paywall: the challenge, bob pays, the content:"))
	p.line(`  ch=$(curl -s %s/premium/article); echo "$ch"`, url)
	p.line(`  token=$(echo "$ch" | sed -nE 's/.*"token": *"([^"]*)".*/\1/p')`)
	p.line(`  inv=$(echo "$ch" | sed -nE 's/.*"invoice": *"([^"]*)".*/\1/p')`)
	p.line(`  pre=$(bob payinvoice --force --json "$inv" | sed -nE 's/.*"payment_preimage": *"([0-9a-f]*)".*/\1/p'); echo "$pre"`)
	p.line(`  curl -s %s/premium/article -H "Authorization: L402 $token:$pre"`, url)

	p.line("\n%s", p.paint(bold, "The Lightning API (alice's node through Caddy):"))
	p.line(`  inv=$(curl -s %s/v1/lightning/generateinvoice -d '{"amount": 1000, "memo": "coffee"}' | sed -nE 's/.*"invoice": *"([^"]*)".*/\1/p'); echo "$inv"`, url)
	p.line(`  curl -s -w '\n' %s/v1/lightning/checkinvoice -d "{\"invoice\": \"$inv\"}"`, url)
	p.line(`  bob payinvoice --force "$inv"`)
	p.line(`  curl -s -w '\n' %s/v1/lightning/checkinvoice -d "{\"invoice\": \"$inv\"}"`, url)
	p.line(`  inv=$(bob addinvoice --amt 500 | sed -nE 's/.*"payment_request": *"([^"]*)".*/\1/p')`)
	p.line(`  curl -s -w '\n' %s/v1/lightning/payinvoice -d "{\"invoice\": \"$inv\"}"`, url)
	p.line(`  curl -s -w '\n' %s/v1/lightning/keysend -d '{"pubkey": "%s", "amount": 21}'`, url, n.Bob.Pubkey)

	p.line("\nIn a browser, %s/premium/article shows the payment page; pay its invoice with", url)
	p.line("  bob payinvoice --force <invoice>")
	p.line("and the page opens the article by itself.")
	p.line("\n%s", p.paint(bold, "Press Ctrl-C to stop Caddy and the network."))
}

// credentials are the paywall credentials the walk-through paid for.
type credentials struct {
	token, preimage string
	ok              bool
}

// lncli returns the node's lncli command line, quoted for a shell.
func lncli(n *regtest.Node) string {
	args := n.LncliArgs()
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}

// shellSafe matches words a POSIX shell takes literally.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell if it needs it.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
