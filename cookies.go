package lightning

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/lightningcaddy/caddy-lightning/l402"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
	"github.com/lightningcaddy/caddy-lightning/x402"
)

// Every cookie the paywalls set is named with cookiePrefix (access:
// l402_<service>_<price>, browser binding: l402_page_<id>), behind
// hostPrefix when Secure, so one rule strips them all.
const (
	cookiePrefix = "l402_"
	hostPrefix   = "__Host-"
)

// bindingLabel separates the browser binding from other uses of a root key.
const bindingLabel = "caddy-lightning payment page"

// isHTTPS reports whether the client's request came over HTTPS: to Caddy
// itself, or to a proxy Caddy trusts (servers > trusted_proxies) that says
// so in X-Forwarded-Proto (the last value, which that proxy wrote).
func isHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); !trusted {
		return false
	}
	values := r.Header.Values("X-Forwarded-Proto")
	if len(values) == 0 {
		return false
	}
	last := values[len(values)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(last), "https")
}

// newCookie is a cookie of the paywall for r: HttpOnly, SameSite=Lax, for
// the whole site, kept for maxAge (rounded up to whole seconds; deleted if
// not positive), and under HTTPS Secure with the __Host- prefix (so no
// subdomain or plain-HTTP page can set or shadow it).
func newCookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
	seconds := int((maxAge + time.Second - 1) / time.Second)
	if maxAge <= 0 {
		seconds = -1
	}
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   seconds,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	if isHTTPS(r) {
		c.Name, c.Secure = hostPrefix+name, true
	}
	return c
}

// cookieValue returns the value of the cookie called name (or its __Host-
// form) in the request's Cookie headers, without parsing the others.
func cookieValue(h http.Header, name string) (string, bool) {
	for _, line := range h["Cookie"] {
		for pair := range strings.SplitSeq(line, ";") {
			n, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && (n == name || strings.HasPrefix(n, hostPrefix) && n[len(hostPrefix):] == name) {
				return strings.TrimSpace(v), true
			}
		}
	}
	return "", false
}

// stripCredentials removes from the request everything a paywall could
// admit it with: L402, LSAT and Payment credentials in Authorization, read
// as the verifiers read them, PAYMENT-SIGNATURE (x402), and every cookie
// any paywall sets. Everything else stays exactly as it came.
func stripCredentials(r *http.Request) {
	stripHeader(r.Header, "Authorization", l402.StripAuthorization)
	stripHeader(r.Header, "Authorization", mpp.StripAuthorization)
	stripHeader(r.Header, "Cookie", withoutPaywallCookies)
	r.Header.Del(x402.HeaderPaymentSignature)
}

// stripHeader rewrites the values of a header with strip, dropping values
// left empty; a header strip does not change is left alone. name is
// canonical.
func stripHeader(h http.Header, name string, strip func(string) string) {
	values := h[name]
	var kept []string
	changed := false
	for i, v := range values {
		s := strip(v)
		if s != v && !changed {
			// The values before the first change stay; appending to them
			// copies (the capacity is cut), so values is not modified.
			kept, changed = values[:i:i], true
		}
		if changed && s != "" {
			kept = append(kept, s)
		}
	}
	switch {
	case !changed:
	case len(kept) == 0:
		delete(h, name)
	default:
		h[name] = kept
	}
}

// withoutPaywallCookies removes the paywalls' cookies from a Cookie value.
func withoutPaywallCookies(value string) string {
	if !strings.Contains(value, cookiePrefix) {
		return value
	}
	pairs := strings.Split(value, ";")
	kept := pairs[:0]
	for _, pair := range pairs {
		if n, _, _ := strings.Cut(strings.TrimSpace(pair), "="); !isPaywallCookie(n) {
			kept = append(kept, strings.TrimSpace(pair))
		}
	}
	return strings.Join(kept, "; ")
}

func isPaywallCookie(name string) bool {
	return strings.HasPrefix(strings.TrimPrefix(name, hostPrefix), cookiePrefix)
}

// pageCookieName names the cookie that binds one challenge's token to the
// browser its payment page was sent to.
func pageCookieName(id l402.Identifier) string {
	// The token id's first 4 bytes name the root key; the next 8 are random.
	return cookiePrefix + "page_" + hex.EncodeToString(id.TokenID[4:12])
}

// pageCookieValue is what the binding cookie of the token with id must
// hold: derived from the root key that minted the token, so only this
// paywall (or an instance sharing its keys) can make it, and nothing needs
// to be stored.
func pageCookieValue(keys *l402.Keyring, id l402.Identifier) (string, bool) {
	b, ok := keys.Binding(id, bindingLabel)
	if !ok {
		return "", false
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), true
}

// sameBrowser reports whether the request carries the binding cookie the
// payment page of the token with id set: it came from the browser that
// asked for the token.
func sameBrowser(r *http.Request, keys *l402.Keyring, id l402.Identifier) bool {
	want, ok := pageCookieValue(keys, id)
	got, sent := cookieValue(r.Header, pageCookieName(id))
	return ok && sent && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
