package l402

import (
	"errors"
	"strings"

	"github.com/lightningcaddy/caddy-lightning/internal/authparam"
	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// ErrNoChallenge means no usable L402 or LSAT challenge was found.
var ErrNoChallenge = errors.New("l402: no L402 challenge")

// maxChallengeLen bounds the WWW-Authenticate values parsed: room for an
// LSAT and an L402 challenge joined, with tokens of MaxTokenLen and
// invoices of MaxHeaderLen.
const maxChallengeLen = 4 * MaxHeaderLen

// Challenge is an L402 payment challenge from a WWW-Authenticate header.
type Challenge struct {
	// Scheme is "L402" or "LSAT".
	Scheme string
	// Token is the base64 token (the "token" parameter, else "macaroon").
	Token string
	// Invoice is the BOLT 11 payment request.
	Invoice string
}

// FormatChallenge returns the WWW-Authenticate value
//
//	L402 version="0", token="<token>", invoice="<invoice>", macaroon="<token>"
//
// Clients of the current specification read version and token; older ones
// (Alby's lightning-tools, lsat-js) read macaroon. Aperture's Go client
// (used by lnget and Loop) matches token or macaroon only when invoice
// follows it directly, hence this parameter order.
func FormatChallenge(token, invoice string) (string, error) {
	if err := checkChallengeArgs(token, invoice); err != nil {
		return "", err
	}
	return `L402 version="0", token="` + token + `", invoice="` + invoice + `", macaroon="` + token + `"`, nil
}

// FormatLegacyChallenge returns the WWW-Authenticate value
// `LSAT macaroon="<token>", invoice="<invoice>"` understood by the oldest
// clients, some of which (older Loop releases) only look at the first
// WWW-Authenticate header and only accept LSAT.
func FormatLegacyChallenge(token, invoice string) (string, error) {
	if err := checkChallengeArgs(token, invoice); err != nil {
		return "", err
	}
	return `LSAT macaroon="` + token + `", invoice="` + invoice + `"`, nil
}

// ChallengeHeaders returns the WWW-Authenticate values to send, in order:
// the legacy LSAT value first (as Aperture does, for clients that only read
// the first header), then the L402 value. Clients that merge the headers
// into one line (fetch) still find every parameter.
func ChallengeHeaders(token, invoice string) ([]string, error) {
	legacy, err := FormatLegacyChallenge(token, invoice)
	if err != nil {
		return nil, err
	}
	current, _ := FormatChallenge(token, invoice)
	return []string{legacy, current}, nil
}

func checkChallengeArgs(token, invoice string) error {
	if !validToken(token) {
		return errdetail.New(ErrMalformed, "token is not base64 or too long")
	}
	if !validInvoice(invoice) {
		return errdetail.New(ErrMalformed, "invoice is not bech32 text")
	}
	return nil
}

// validInvoice reports whether s looks like a BOLT 11 payment request:
// ASCII letters and digits only, at most MaxHeaderLen long.
func validInvoice(s string) bool {
	if len(s) == 0 || len(s) > MaxHeaderLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// ParseChallenge returns the challenge a client should pay from the given
// WWW-Authenticate values: the first L402 one, else the first LSAT one.
func ParseChallenge(values []string) (Challenge, error) {
	cs := ParseChallenges(values)
	for _, c := range cs {
		if c.Scheme == "L402" {
			return c, nil
		}
	}
	if len(cs) > 0 {
		return cs[0], nil
	}
	return Challenge{}, ErrNoChallenge
}

// ParseChallenges returns every well-formed L402 and LSAT challenge in the
// given WWW-Authenticate values, in order. It follows the RFC 9110 syntax
// (several comma-separated challenges per value, parameters in any order and
// case, quoted or not) and skips other schemes, challenges whose version is
// not "0", whose token is not base64 or whose invoice is not bech32 text, and
// values longer than 32 KiB.
func ParseChallenges(values []string) []Challenge {
	var out []Challenge
	for _, v := range values {
		if len(v) <= maxChallengeLen {
			out = appendChallenges(out, v)
		}
	}
	return out
}

// challengeParams collects the parameters of one challenge; the first
// occurrence of each wins.
type challengeParams struct {
	version, token, macaroon, invoice string
	hasVersion                        bool
}

func (c *challengeParams) set(name, value string) {
	switch {
	case strings.EqualFold(name, "version") && !c.hasVersion:
		c.version, c.hasVersion = value, true
	case strings.EqualFold(name, "token") && c.token == "":
		c.token = value
	case strings.EqualFold(name, "macaroon") && c.macaroon == "":
		c.macaroon = value
	case strings.EqualFold(name, "invoice") && c.invoice == "":
		c.invoice = value
	}
}

func appendChallenges(dst []Challenge, v string) []Challenge {
	p := authparam.NewChallenges(v)
	for {
		var c challengeParams
		scheme, bad, ok := p.Next(c.set)
		if !ok {
			return dst
		}
		if !isL402Scheme(scheme) || bad {
			continue
		}
		tok := c.token
		if tok == "" {
			tok = c.macaroon
		}
		if c.hasVersion && c.version != "0" || !validToken(tok) || !validInvoice(c.invoice) {
			continue
		}
		dst = append(dst, Challenge{Scheme: strings.ToUpper(scheme), Token: tok, Invoice: c.invoice})
	}
}
