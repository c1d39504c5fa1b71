package lightning

import (
	"cmp"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("lightning", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("lightning", parseHandler)
	httpcaddyfile.RegisterDirectiveOrder("lightning", httpcaddyfile.Before, "respond")
	httpcaddyfile.RegisterHandlerDirective("paywall", parsePaywall)
	httpcaddyfile.RegisterDirectiveOrder("paywall", httpcaddyfile.After, "forward_auth")
}

// parseGlobalOption sets up the lightning app:
//
//	{
//		lightning {
//			lnd {
//				address  <host:port>
//				tls_cert <path|PEM|hex>
//				macaroon <path|hex>
//				timeout  <duration>
//			}
//			sync_interval      <duration>
//			route_hints        auto|always|never
//			client_ipv6_prefix <bits>
//			ledger [embedded] {
//				flush_interval <duration>
//				max_unsaved    <count>
//				storage        <module> ...
//				prefix         <key prefix>
//			}
//			ledger redis {
//				url      <redis://host:port/db | rediss://...>
//				password <password>
//				ca_cert  <path|PEM>
//				timeout  <duration>
//				prefix   <key prefix>
//			}
//		}
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("the lightning global option may appear only once")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "lightning", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from the global option's block; see
// parseGlobalOption for the syntax.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "lnd":
			if a.LND != nil {
				return d.Err("lnd may be given only once")
			}
			a.LND = new(LNDConfig)
			if err := a.LND.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "sync_interval":
			if a.SyncInterval != 0 {
				return d.Err("sync_interval may be given only once")
			}
			interval, err := parseDurationArg(d)
			if err != nil {
				return err
			}
			a.SyncInterval = interval
		case "client_ipv6_prefix":
			if a.ClientIPv6Prefix != 0 {
				return d.Err("client_ipv6_prefix may be given only once")
			}
			var value string
			if !d.AllArgs(&value) {
				return d.ArgErr()
			}
			bits, err := strconv.Atoi(value)
			if err != nil || bits < 1 || bits > 128 {
				return d.Errf("client_ipv6_prefix: %q is not a number of bits from 1 to 128", value)
			}
			a.ClientIPv6Prefix = bits
		case "ledger":
			if a.Ledger != nil {
				return d.Err("ledger may be given only once")
			}
			a.Ledger = new(LedgerConfig)
			if err := a.Ledger.unmarshalCaddyfile(d); err != nil {
				return err
			}
		case "route_hints":
			if a.RouteHints != "" {
				return d.Err("route_hints may be given only once")
			}
			if !d.AllArgs(&a.RouteHints) {
				return d.ArgErr()
			}
			switch a.RouteHints {
			case "auto", "always", "never":
			default:
				return d.Errf("route_hints: %q is not auto, always or never", a.RouteHints)
			}
		default:
			return d.Errf("unrecognized lightning option '%s'", d.Val())
		}
	}
	return nil
}

// unmarshalCaddyfile reads `ledger [embedded|redis] { ... }`; see
// parseGlobalOption.
func (c *LedgerConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		c.Backend = d.Val()
		if c.Backend != backendEmbedded && c.Backend != backendRedis {
			return d.Errf("ledger: %q is not embedded or redis", c.Backend)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return eachOption(d, func(option string) error {
		embedded, redis := c.Backend != backendRedis, c.Backend == backendRedis
		var err error
		switch {
		case option == "flush_interval" && embedded:
			c.FlushInterval, err = parseDurationArg(d)
		case option == "max_unsaved" && embedded:
			var value string
			if !d.AllArgs(&value) {
				return d.ArgErr()
			}
			n, perr := strconv.Atoi(value)
			if perr != nil || n < 1 {
				return d.Errf("max_unsaved: %q is not a positive number", value)
			}
			c.MaxUnsaved = n
		case option == "storage" && embedded:
			if !d.NextArg() {
				return d.ArgErr()
			}
			unm, uerr := caddyfile.UnmarshalModule(d, "caddy.storage."+d.Val())
			if uerr != nil {
				return uerr
			}
			storage, ok := unm.(caddy.StorageConverter)
			if !ok {
				return d.Errf("storage: module %s is not a storage", d.Val())
			}
			c.StorageRaw = caddyconfig.JSONModuleObject(storage, "module", storage.(caddy.Module).CaddyModule().ID.Name(), nil)
		case option == "url" && redis:
			if !d.AllArgs(&c.URL) {
				return d.ArgErr()
			}
		case option == "password" && redis:
			if !d.AllArgs(&c.Password) {
				return d.ArgErr()
			}
		case option == "ca_cert" && redis:
			if !d.AllArgs(&c.CACert) {
				return d.ArgErr()
			}
		case option == "timeout" && redis:
			c.Timeout, err = parseDurationArg(d)
		case option == "prefix":
			if !d.AllArgs(&c.Prefix) {
				return d.ArgErr()
			}
		default:
			backend := cmp.Or(c.Backend, backendEmbedded)
			return d.Errf("unrecognized option '%s' of the %s ledger", option, backend)
		}
		return err
	})
}

func (c *LNDConfig) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		option := d.Val()
		var field *string
		switch option {
		case "address":
			field = &c.Address
		case "tls_cert":
			field = &c.TLSCert
		case "macaroon":
			field = &c.Macaroon
		case "timeout":
			if c.Timeout != 0 {
				return d.Errf("%s may be given only once", option)
			}
			dur, err := parseDurationArg(d)
			if err != nil {
				return err
			}
			c.Timeout = dur
			continue
		default:
			return d.Errf("unrecognized lnd option '%s'", option)
		}
		if *field != "" {
			return d.Errf("%s may be given only once", option)
		}
		if !d.AllArgs(field) {
			return d.ArgErr()
		}
	}
	return nil
}

func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler:
//
//	lightning {
//		invoice_expiry      <duration>
//		max_payment         <sats>
//		max_fee             <sats>
//		payment_timeout     <duration>
//		cltv_limit          <blocks>
//		budget              <sats> [<window>]
//		api_key             <key>
//		invoices_per_client <events> <window> | off
//	}
//
// Without a block the handler serves invoices and checks only: outgoing
// payments need max_payment.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachOption(d, func(option string) error {
		var err error
		switch option {
		case "invoice_expiry":
			h.InvoiceExpiry, err = parseDurationArg(d)
		case "payment_timeout":
			h.PaymentTimeout, err = parseDurationArg(d)
		case "max_payment":
			h.MaxPayment, err = parseSatsArg(d)
		case "max_fee":
			h.MaxFee, err = parseSatsArg(d)
		case "cltv_limit":
			var value string
			if !d.AllArgs(&value) {
				return d.ArgErr()
			}
			blocks, perr := strconv.ParseUint(value, 10, 32)
			if perr != nil || blocks == 0 {
				return d.Errf("cltv_limit: %q is not a positive number of blocks", value)
			}
			h.CLTVLimit = uint32(blocks)
		case "budget":
			h.Budget, err = parseBudgetArgs(d)
		case "api_key":
			if !d.AllArgs(&h.APIKey) {
				return d.ArgErr()
			}
		case "invoices_per_client":
			h.InvoicesPerClient, err = parseRateArgs(d)
		default:
			return d.Errf("unrecognized lightning option '%s'", option)
		}
		return err
	})
}

func parsePaywall(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	p := new(Paywall)
	err := p.UnmarshalCaddyfile(h.Dispenser)
	return p, err
}

// UnmarshalCaddyfile sets up the paywall:
//
//	paywall [<price>] {
//		mode                pass|per_request|prepaid
//		offers              l402|charge|x402...
//		price               <sats>|<placeholders>
//		max_price           <sats>
//		balance             <sats>
//		cost_header         <name>
//		max_cost            <sats>
//		charge_failures
//		valid_for           <duration>
//		memo                <text>
//		invoice_expiry      <duration>
//		service             <name>
//		root_key            <hex>
//		keep_credentials
//		invoices_per_client <events> <window> | off
//		invoices_total      <events> <window> | off
//		lookups_per_client  <events> <window> | off
//		session {
//			deposit          <sats>
//			idle_timeout     <duration>
//			refund_fee_limit <sats>
//		}
//	}
//
// The price is required, as the argument or in the block: a number of
// sats, or placeholders such as {vars.price} (with max_price).
func (p *Paywall) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		price, err := parsePriceArg(d)
		if err != nil {
			return err
		}
		p.Price = price
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	if err := eachOption(d, func(option string) error {
		if option == "price" && p.Price != "" {
			return d.Err("price may be given only once")
		}
		var err error
		switch option {
		case "mode":
			if !d.AllArgs(&p.Mode) {
				return d.ArgErr()
			}
			switch p.Mode {
			case modePass, modePerRequest, modePrepaid:
			default:
				return d.Errf("mode: %q is not pass, per_request or prepaid", p.Mode)
			}
		case "offers":
			p.Offers = d.RemainingArgs()
			if len(p.Offers) == 0 {
				return d.ArgErr()
			}
		case "price":
			if !d.NextArg() {
				return d.ArgErr()
			}
			p.Price, err = parsePriceArg(d)
			if err == nil && d.NextArg() {
				return d.ArgErr()
			}
		case "max_price":
			p.MaxPrice, err = parsePositiveSatsArg(d)
		case "balance":
			p.Balance, err = parsePositiveSatsArg(d)
		case "cost_header":
			if !d.AllArgs(&p.CostHeader) {
				return d.ArgErr()
			}
		case "max_cost":
			p.MaxCost, err = parsePositiveSatsArg(d)
		case "charge_failures":
			if d.NextArg() {
				return d.ArgErr()
			}
			p.ChargeFailures = true
		case "valid_for":
			p.ValidFor, err = parseDurationArg(d)
		case "invoice_expiry":
			p.InvoiceExpiry, err = parseDurationArg(d)
		case "memo":
			if !d.AllArgs(&p.Memo) {
				return d.ArgErr()
			}
		case "service":
			if !d.AllArgs(&p.Service) {
				return d.ArgErr()
			}
		case "root_key":
			if !d.AllArgs(&p.RootKey) {
				return d.ArgErr()
			}
		case "keep_credentials":
			if d.NextArg() {
				return d.ArgErr()
			}
			p.KeepCredentials = true
		case "invoices_per_client":
			p.InvoicesPerClient, err = parseRateArgs(d)
		case "invoices_total":
			p.InvoicesTotal, err = parseRateArgs(d)
		case "lookups_per_client":
			p.LookupsPerClient, err = parseRateArgs(d)
		case "session":
			p.Session, err = parseSessionBlock(d)
		default:
			return d.Errf("unrecognized paywall option '%s'", option)
		}
		return err
	}); err != nil {
		return err
	}
	if p.Price == "" {
		return d.Err("paywall: a price in satoshis is required")
	}
	return nil
}

// parseSessionBlock reads the session block (which may be empty: the
// defaults).
func parseSessionBlock(d *caddyfile.Dispenser) (*SessionConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	s := new(SessionConfig)
	if err := eachOption(d, func(option string) error {
		var err error
		switch option {
		case "deposit":
			s.Deposit, err = parsePositiveSatsArg(d)
		case "idle_timeout":
			s.IdleTimeout, err = parseDurationArg(d)
		case "refund_fee_limit":
			s.RefundFeeLimit, err = parsePositiveSatsArg(d)
		default:
			return d.Errf("unrecognized session option '%s'", option)
		}
		return err
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// parsePriceArg reads the current argument as a price: a positive number
// of sats, or placeholders evaluated per request.
func parsePriceArg(d *caddyfile.Dispenser) (caddyhttp.WeakString, error) {
	if _, _, err := parsePrice(d.Val()); err != nil {
		return "", d.Errf("price: %q is not a positive number of satoshis or placeholders", d.Val())
	}
	return caddyhttp.WeakString(d.Val()), nil
}

// parseBudgetArgs reads "<sats> [<window>]".
func parseBudgetArgs(d *caddyfile.Dispenser) (*Budget, error) {
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 {
		return nil, d.ArgErr()
	}
	sats, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || sats <= 0 || sats > maxSats {
		return nil, d.Errf("budget: %q is not a positive amount of satoshis", args[0])
	}
	b := &Budget{Amount: sats}
	if len(args) == 2 {
		window, err := caddy.ParseDuration(args[1])
		if err != nil || window <= 0 {
			return nil, d.Errf("budget: %q is not a positive duration", args[1])
		}
		b.Window = caddy.Duration(window)
	}
	return b, nil
}

// parseRateArgs reads "<events> <window>" or "off".
func parseRateArgs(d *caddyfile.Dispenser) (*Rate, error) {
	option := d.Val()
	args := d.RemainingArgs()
	if len(args) == 1 && args[0] == "off" {
		return &Rate{}, nil
	}
	if len(args) != 2 {
		return nil, d.ArgErr()
	}
	events, err := strconv.Atoi(args[0])
	if err != nil || events <= 0 {
		return nil, d.Errf("%s: %q is not a positive number", option, args[0])
	}
	window, err := caddy.ParseDuration(args[1])
	if err != nil || window <= 0 {
		return nil, d.Errf("%s: %q is not a positive duration", option, args[1])
	}
	return &Rate{Events: events, Window: caddy.Duration(window)}, nil
}

// parseDurationArg reads the one positive duration argument of an option.
func parseDurationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	var value string
	if !d.AllArgs(&value) {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(value)
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s: %q is not a positive duration", d.Val(), value)
	}
	return caddy.Duration(dur), nil
}

// parsePositiveSatsArg reads the one positive satoshi amount of an option.
func parsePositiveSatsArg(d *caddyfile.Dispenser) (int64, error) {
	option := d.Val()
	var value string
	if !d.AllArgs(&value) {
		return 0, d.ArgErr()
	}
	sats, err := parseSats(value)
	if err != nil {
		return 0, d.Errf("%s: %q is not a positive amount of satoshis", option, value)
	}
	return sats, nil
}

// parseSatsArg reads the one non-negative satoshi amount of an option.
func parseSatsArg(d *caddyfile.Dispenser) (int64, error) {
	option := d.Val()
	var value string
	if !d.AllArgs(&value) {
		return 0, d.ArgErr()
	}
	sats, err := strconv.ParseInt(value, 10, 64)
	if err != nil || sats < 0 || sats > maxSats {
		return 0, d.Errf("%s: %q is not an amount of satoshis", option, value)
	}
	return sats, nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*Paywall)(nil)
)

// eachOption calls set with each option of the block d is at, in order:
// an option given twice is an error.
func eachOption(d *caddyfile.Dispenser, set func(option string) error) error {
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		option := d.Val()
		if seen[option] {
			return d.Errf("%s may be given only once", option)
		}
		seen[option] = true
		if err := set(option); err != nil {
			return err
		}
	}
	return nil
}
