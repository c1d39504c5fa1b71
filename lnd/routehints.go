package lnd

import (
	"context"
	"fmt"
	"time"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndrpc"
)

// RouteHints says when the node's invoices carry route hints: the private
// channels a payer can reach the node through (lnd adds them when
// AddInvoice's private flag is set, for its active private channels with a
// public peer, such as an LSP).
type RouteHints string

// Route hint modes.
const (
	// RouteHintsAuto asks for hints unless the node's active public
	// channels can receive the invoice's amount (from ListChannels, which
	// needs offchain:read; without it, or when the node does not answer,
	// hints are asked for).
	RouteHintsAuto RouteHints = "auto"
	// RouteHintsAlways asks for hints on every invoice.
	RouteHintsAlways RouteHints = "always"
	// RouteHintsNever never asks for hints: private channels stay private,
	// and a node reachable only through them cannot be paid.
	RouteHintsNever RouteHints = "never"
)

// channelsMaxAge is how long a view of the node's channels is used before
// ListChannels is asked again.
const channelsMaxAge = 30 * time.Second

// validRouteHints checks a mode; "" means RouteHintsAuto.
func validRouteHints(mode RouteHints) (RouteHints, error) {
	switch mode {
	case "":
		return RouteHintsAuto, nil
	case RouteHintsAuto, RouteHintsAlways, RouteHintsNever:
		return mode, nil
	}
	return "", fmt.Errorf("route hints must be %s, %s or %s, not %q", RouteHintsAuto, RouteHintsAlways, RouteHintsNever, mode)
}

// inboundView is what the client last learned of the node's public
// channels.
type inboundView struct {
	at      time.Time
	known   bool  // false: ListChannels failed
	denied  bool  // ListChannels is not permitted: never ask again
	inbound int64 // what the active public channels can receive, sat
}

// routeHints reports whether an invoice for amountSat should ask lnd for
// route hints.
func (c *Client) routeHints(ctx context.Context, amountSat int64) bool {
	switch c.hints {
	case RouteHintsNever:
		return false
	case RouteHintsAlways:
		return true
	}
	view := c.publicInbound(ctx)
	return !view.known || view.inbound < amountSat
}

// publicInbound returns a recent view of the node's public inbound
// liquidity, asking the node (once for concurrent callers) when the last
// view is older than channelsMaxAge.
func (c *Client) publicInbound(ctx context.Context) *inboundView {
	if v := c.inbound.Load(); v != nil && (v.denied || now().Sub(v.at) < channelsMaxAge) {
		return v
	}
	v, _, _ := c.inboundFlight.Do("", func() (any, error) {
		v := c.listPublicInbound(ctx)
		c.inbound.Store(v)
		return v, nil
	})
	return v.(*inboundView)
}

// listPublicInbound asks the node for its active public channels.
func (c *Client) listPublicInbound(ctx context.Context) *inboundView {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	v := &inboundView{at: now()}
	resp, err := c.rpc.ListChannels(ctx, &lndrpc.ListChannelsRequest{ActiveOnly: true, PublicOnly: true})
	if err != nil {
		v.denied = isPermissionDenied(err)
		return v
	}
	v.known = true
	for _, ch := range resp.Channels {
		v.inbound += ch.RemoteBalance
	}
	return v
}
