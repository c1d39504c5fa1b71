// Package redistest starts Debian's redis-server for tests: one server per
// Start, on 127.0.0.1 on a free port, in a temporary directory, without
// persistence, stopped when the test ends. scripts/install-deps.sh installs
// redis-server; without it a test skips under -short and fails otherwise.
// Run starts one outside a test (the load command's). Linux only
// (Pdeathsig).
package redistest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options shapes the server.
type Options struct {
	// Password is required of clients (requirepass) when set.
	Password string
	// TLS makes the server speak TLS only, with a self-signed certificate
	// for 127.0.0.1 made for the test.
	TLS bool
}

// Server is a running redis-server.
type Server struct {
	// Addr is its host:port.
	Addr string
	// URL is redis://127.0.0.1:port, or rediss:// with TLS; the password,
	// if any, is not in it.
	URL string
	// TLS trusts the server's certificate (nil without TLS).
	TLS *tls.Config
	// CertFile is the server's self-signed certificate, PEM, which a
	// client can trust as a CA ("" without TLS).
	CertFile string

	cmd       *exec.Cmd
	done      chan struct{} // closed when the process has exited
	output    *lockedBuffer
	stop      sync.Once
	removeDir string // Run's directory
}

// startTimeout bounds the wait for "Ready to accept connections".
const startTimeout = 20 * time.Second

// Start starts a server for t and stops it when t ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if testing.Short() {
			t.Skip("redis-server is not installed (scripts/install-deps.sh installs it)")
		}
		t.Fatal("redis-server is not installed: run scripts/install-deps.sh (it installs Debian's redis-server)")
	}
	s, err := startIn(t.TempDir(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Run starts a server outside a test, in a temporary directory that Stop
// removes.
func Run(opt Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, err
	}
	s, err := startIn(dir, opt)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.removeDir = dir
	return s, nil
}

// startIn starts a server in dir.
func startIn(dir string, opt Options) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not installed: run scripts/install-deps.sh (it installs Debian's redis-server)")
	}
	var cfg *tls.Config
	if opt.TLS {
		if cfg, err = writeCertificate(dir); err != nil {
			return nil, err
		}
	}
	// Another process may take the free port before redis binds it: retry.
	for attempt := 1; ; attempt++ {
		s, err := start(bin, dir, opt)
		if err == nil {
			s.TLS = cfg
			if opt.TLS {
				s.CertFile = filepath.Join(dir, "cert.pem")
			}
			return s, nil
		}
		if attempt == 5 || !strings.Contains(err.Error(), "already in use") {
			return nil, err
		}
	}
}

func start(bin, dir string, opt Options) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("redistest: free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{
		"--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--logfile", "", "--databases", "1",
	}
	scheme := "redis"
	if opt.TLS {
		scheme = "rediss"
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", filepath.Join(dir, "cert.pem"), "--tls-key-file", filepath.Join(dir, "key.pem"),
			"--tls-ca-cert-file", filepath.Join(dir, "cert.pem"), "--tls-auth-clients", "no")
	} else {
		args = append(args, "--port", strconv.Itoa(port))
	}
	if opt.Password != "" {
		args = append(args, "--requirepass", opt.Password)
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redistest: start redis-server: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{
		Addr:   addr,
		URL:    (&url.URL{Scheme: scheme, Host: addr}).String(),
		cmd:    cmd,
		done:   make(chan struct{}),
		output: &lockedBuffer{},
	}
	ready := make(chan struct{})
	go func() {
		// Keep reading to the end, so the server never blocks on its log.
		r := bufio.NewReader(out)
		signalled := false
		for {
			line, err := r.ReadString('\n')
			s.output.write(line)
			if !signalled && strings.Contains(line, "Ready to accept connections") {
				close(ready)
				signalled = true
			}
			if err != nil {
				break
			}
		}
		_ = cmd.Wait()
		close(s.done)
	}()
	select {
	case <-ready:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("redistest: redis-server exited at start:\n%s", s.output.String())
	case <-time.After(startTimeout):
		s.Stop()
		return nil, fmt.Errorf("redistest: redis-server not ready after %s:\n%s", startTimeout, s.output.String())
	}
}

// Stop stops the server (at once: tests use it to make Redis unreachable).
// Calling it again does nothing.
func (s *Server) Stop() {
	s.stop.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
		if s.removeDir != "" {
			_ = os.RemoveAll(s.removeDir)
		}
	})
}

// roundTripCommands are the commands a ledger client sends: its scripts
// and the connection's setup.
var roundTripCommands = []string{"cmdstat_evalsha", "cmdstat_eval", "cmdstat_hello", "cmdstat_auth", "cmdstat_client|setinfo", "cmdstat_select", "cmdstat_ping"}

// Commands returns how many commands clients sent the server, read from
// INFO commandstats through c: the top-level calls (run or refused) of the
// only commands the ledger sends (EVALSHA, EVAL) and of those a connection
// starts with, so the round trips of the ledgers' clients. INFO
// commandstats counts the commands scripts call under their own names, so
// those are left out.
func Commands(ctx context.Context, c *redis.Client) (int64, error) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, err
	}
	var n int64
	for line := range strings.Lines(info) {
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !slices.Contains(roundTripCommands, name) {
			continue
		}
		for field := range strings.SplitSeq(stats, ",") {
			k, v, _ := strings.Cut(field, "=")
			if k == "calls" || k == "rejected_calls" {
				x, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("redistest: INFO commandstats: %q: %w", line, err)
				}
				n += x
			}
		}
	}
	return n, nil
}

// ReadEvents returns how many times the server has read from its clients'
// connections (INFO stats total_reads_processed): one per round trip, as a
// pipeline of commands arrives in one read.
func ReadEvents(ctx context.Context, c *redis.Client) (int64, error) {
	info, err := c.Info(ctx, "stats").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_reads_processed:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("redistest: INFO stats has no total_reads_processed")
}

// writeCertificate writes a self-signed certificate for 127.0.0.1 and its
// key to dir, and returns a client configuration that trusts it.
func writeCertificate(dir string) (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// lockedBuffer keeps the server's output for error messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) write(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<16 {
		l.b.WriteString(s)
	}
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
