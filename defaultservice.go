package lightning

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// defaultService names what a paywall without `service` sells: "paywall-"
// and 16 hex digits of a hash of where the paywall sits in the http app:
// its server's listen addresses, then, for every route from the server's
// down to the paywall's, the route's matchers (as JSON) and how many
// earlier routes beside it have the same matchers, and last how many
// paywalls come before it in its route. A Caddyfile site becomes a route
// that matches its host names inside its server, and each `route`,
// `handle` or matcher within it a route inside that, so the name follows
// the site and the route. It is the same across reloads and on every
// instance that loads the same config, survives adding or removing other
// routes, and no two paywalls share it.
//
// It needs the whole config provisioned, so it runs at the app's Start (or
// the first request). A paywall it cannot find (provisioned outside an
// http app) gets a hash of its own settings, with a warning.
func (p *Paywall) defaultService() string {
	var path []string
	found := false
	if p.httpApp != nil {
		names := make([]string, 0, len(p.httpApp.Servers))
		for name := range p.httpApp.Servers {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if path, found = findInServer(p.httpApp.Servers[name], p); found {
				break
			}
		}
	}
	if !found {
		var settings map[string]any
		raw, _ := json.Marshal(p)
		_ = json.Unmarshal(raw, &settings)
		delete(settings, "root_key")
		raw, _ = json.Marshal(settings) // keys sorted
		path = []string{"settings", string(raw)}
		p.logger.Warn("paywall not found in the http app's routes; its default service is derived from its settings, "+
			"so paywalls with the same settings share it: set `service`", zap.Int64("price", p.Price))
	}
	sum := sha256.Sum256([]byte(strings.Join(path, "\n")))
	return "paywall-" + hex.EncodeToString(sum[:8])
}

// findInServer returns the path to target in srv's routes, error routes or
// named routes.
func findInServer(srv *caddyhttp.Server, target *Paywall) ([]string, bool) {
	listen := slices.Clone(srv.Listen)
	slices.Sort(listen)
	base := []string{"listen " + strings.Join(listen, " ")}
	if path, ok := findInRoutes(srv.Routes, target, base); ok {
		return path, true
	}
	if srv.Errors != nil {
		if path, ok := findInRoutes(srv.Errors.Routes, target, append(base, "errors")); ok {
			return path, true
		}
	}
	for name, route := range srv.NamedRoutes {
		if path, ok := findInRoutes(caddyhttp.RouteList{*route}, target, append(base, "named "+name)); ok {
			return path, true
		}
	}
	return nil, false
}

// findInRoutes returns the path to target within routes, below path.
func findInRoutes(routes caddyhttp.RouteList, target *Paywall, path []string) ([]string, bool) {
	seen := map[string]int{}
	for _, route := range routes {
		matchers := describeMatchers(route.MatcherSets)
		step := matchers + " #" + strconv.Itoa(seen[matchers])
		seen[matchers]++
		below := append(slices.Clip(path), step)
		paywalls := 0
		for _, h := range route.Handlers {
			switch h := h.(type) {
			case *Paywall:
				if h == target {
					return append(below, "paywall #"+strconv.Itoa(paywalls)), true
				}
				paywalls++
			case *caddyhttp.Subroute:
				if found, ok := findInRoutes(h.Routes, target, below); ok {
					return found, true
				}
				if h.Errors != nil {
					if found, ok := findInRoutes(h.Errors.Routes, target, append(slices.Clip(below), "errors")); ok {
						return found, true
					}
				}
			}
		}
	}
	return nil, false
}

// describeMatchers writes a route's matcher sets as JSON, each matcher
// with its type; a matcher that does not marshal is described by its type
// alone (the count of routes with the same description still tells such
// routes apart).
func describeMatchers(sets caddyhttp.MatcherSets) string {
	var b strings.Builder
	for i, set := range sets {
		if i > 0 {
			b.WriteString(" or ")
		}
		for j, m := range set {
			if j > 0 {
				b.WriteString(" and ")
			}
			fmt.Fprintf(&b, "%T", m)
			if raw, err := json.Marshal(m); err == nil {
				b.Write(raw)
			}
		}
	}
	return b.String()
}
