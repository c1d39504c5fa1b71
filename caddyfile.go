package lightning

import (
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
		default:
			return d.Errf("unrecognized lightning option '%s'", d.Val())
		}
	}
	return nil
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
//		invoice_expiry  <duration>
//		max_payment     <sats>
//		max_fee         <sats>
//		payment_timeout <duration>
//	}
//
// Without a block the handler serves invoices and checks only: outgoing
// payments need max_payment.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		option := d.Val()
		if seen[option] {
			return d.Errf("%s may be given only once", option)
		}
		seen[option] = true
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
		default:
			return d.Errf("unrecognized lightning option '%s'", option)
		}
		if err != nil {
			return err
		}
	}
	return nil
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
)
