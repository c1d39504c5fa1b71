package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// upstream is the "premium content" server behind the paywall.
type upstream struct {
	addr   string // 127.0.0.1:<port>
	server *http.Server
}

// startUpstream serves the premium content on a free loopback port.
func startUpstream() (*upstream, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start upstream: %w", err)
	}
	u := &upstream{addr: l.Addr().String()}
	u.server = &http.Server{Handler: http.HandlerFunc(u.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = u.server.Serve(l) }() // returns http.ErrServerClosed on stop
	return u, nil
}

// serve answers every request with a short article. It tells whether the
// credentials reached it: the paywall removes them unless
// keep_credentials is set.
func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	credentials := "kept the credentials from this server"
	if r.Header.Get("Authorization") != "" {
		credentials = "passed the credentials on (keep_credentials)"
	}
	fmt.Fprintf(w, "⚡ Premium article %s\n"+
		"Thank you for paying with Lightning! This text comes from the upstream server at %s.\n"+
		"Caddy's paywall accepted your payment and %s.\n",
		r.URL.Path, u.addr, credentials)
}

// stop shuts the server down, waiting at most 5 seconds for open requests.
func (u *upstream) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := u.server.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("stop upstream: %w", err)
	}
	return nil
}
