package lightning

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// parsePrice reads the price setting: a number of sats, or text with
// placeholders (such as {http.vars.price}, set by `vars` or `map`) that
// every request evaluates to its price.
func parsePrice(s string) (fixed int64, template string, err error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return 0, "", errors.New("price is required")
	case strings.Contains(s, "{"):
		return 0, s, nil
	}
	fixed, err = parseSats(s)
	if err != nil {
		return 0, "", fmt.Errorf("price %q: %w", s, err)
	}
	return fixed, "", nil
}

// requestPrice returns the price of r: the fixed price, or the price
// template evaluated for r, which must be a whole number of sats from 1
// to max_price. Anything else is an error: the request is refused, never
// served free.
func (p *Paywall) requestPrice(r *http.Request) (int64, error) {
	if p.priceTemplate == "" {
		return p.price, nil
	}
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return 0, errors.New("no placeholders to evaluate the price with")
	}
	value := strings.TrimSpace(repl.ReplaceAll(p.priceTemplate, ""))
	price, err := parseSats(value)
	if err != nil {
		return 0, fmt.Errorf("price %q (from %s): %w", truncateUTF8(value, 64), p.priceTemplate, err)
	}
	if price > p.MaxPrice {
		return 0, fmt.Errorf("price %d sats (from %s) is above max_price %d", price, p.priceTemplate, p.MaxPrice)
	}
	return price, nil
}

// priceFailed answers a request whose price cannot be set: 500, with the
// reason in the log.
func (p *Paywall) priceFailed(w http.ResponseWriter, r *http.Request, err error) error {
	return p.failed(w, r, "paywall: the price of this request is invalid, so it is refused", err)
}
