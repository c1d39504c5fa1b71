package regtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// Pinned versions of the daemons the harness builds from the Go module proxy.
// BtcdVersion is the btcd version that LndVersion itself requires.
const (
	LndModule   = "github.com/lightningnetwork/lnd"
	LndVersion  = "v0.21.0-beta"
	BtcdModule  = "github.com/btcsuite/btcd"
	BtcdVersion = "v0.25.1-0.20260310163610-1c55c7c18179"
)

// lndTags are the build tags of the lnd binaries. lowscrypt makes wallet
// creation ~5x faster; it weakens wallet encryption, which is fine for
// throwaway regtest wallets only.
const lndTags = "lowscrypt"

// CacheEnv names the environment variable that overrides the binary cache
// root (default: os.UserCacheDir()/caddy-lightning).
const CacheEnv = "CADDY_LIGHTNING_CACHE"

// progressInterval is how often a running build reports its elapsed time.
const progressInterval = 15 * time.Second

// Binaries holds the absolute paths of the built executables.
type Binaries struct {
	Lnd    string
	Lncli  string
	Btcd   string
	Btcctl string
}

// build describes one module whose commands go into one cache directory.
type build struct {
	module, version, tags string
	pkgs                  []string // packages to build, relative to the module root
	bins                  []string // resulting executable names, in pkgs order
}

func (b build) key() string {
	k := filepath.Base(b.module) + "-" + b.version
	if b.tags != "" {
		k += "-" + b.tags
	}
	return k + "-" + runtime.GOOS + "-" + runtime.GOARCH
}

var (
	lndBuild = build{
		module: LndModule, version: LndVersion, tags: lndTags,
		pkgs: []string{"./cmd/lnd", "./cmd/lncli"}, bins: []string{"lnd", "lncli"},
	}
	btcdBuild = build{
		module: BtcdModule, version: BtcdVersion,
		pkgs: []string{".", "./cmd/btcctl"}, bins: []string{"btcd", "btcctl"},
	}
)

// CacheDir returns the root of the binary cache: $CADDY_LIGHTNING_CACHE if
// set, else os.UserCacheDir()/caddy-lightning.
func CacheDir() (string, error) {
	if dir := os.Getenv(CacheEnv); dir != "" {
		return filepath.Abs(dir)
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("user cache dir (set %s): %w", CacheEnv, err)
	}
	return filepath.Join(dir, "caddy-lightning"), nil
}

// EnsureBinaries returns the cached lnd, lncli, btcd and btcctl, building
// whatever is missing first. The first build takes several minutes; progress
// goes to w. Concurrent callers, also in other processes, wait for each other
// through a lock file, and an interrupted build never leaves a partial cache
// entry behind.
func EnsureBinaries(ctx context.Context, w io.Writer) (*Binaries, error) {
	root, err := CacheDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create binary cache: %w", err)
	}
	lndDir, err := ensureBuild(ctx, w, root, lndBuild)
	if err != nil {
		return nil, err
	}
	btcdDir, err := ensureBuild(ctx, w, root, btcdBuild)
	if err != nil {
		return nil, err
	}
	return &Binaries{
		Lnd:    filepath.Join(lndDir, "lnd"),
		Lncli:  filepath.Join(lndDir, "lncli"),
		Btcd:   filepath.Join(btcdDir, "btcd"),
		Btcctl: filepath.Join(btcdDir, "btcctl"),
	}, nil
}

// ensureBuild returns root/<key>, building it under a lock if it is absent.
func ensureBuild(ctx context.Context, w io.Writer, root string, b build) (string, error) {
	dir := filepath.Join(root, b.key())
	if complete(dir, b.bins) {
		return dir, nil
	}
	unlock, err := lockFile(ctx, w, filepath.Join(root, b.key()+".lock"))
	if err != nil {
		return "", fmt.Errorf("lock binary cache: %w", err)
	}
	defer unlock()
	// Another process may have finished the build while we waited.
	if complete(dir, b.bins) {
		return dir, nil
	}
	if err := buildInto(ctx, w, root, dir, b); err != nil {
		return "", fmt.Errorf("build %s@%s: %w", b.module, b.version, err)
	}
	return dir, nil
}

func complete(dir string, bins []string) bool {
	for _, bin := range bins {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return false
		}
	}
	return true
}

// lockFile takes an exclusive flock on path, polling so that ctx can cancel
// the wait. The lock is released by the returned function or when the
// process dies.
func lockFile(ctx context.Context, w io.Writer, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	waiting := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if !waiting {
			fmt.Fprintf(w, "regtest: waiting for another process building into %s\n", filepath.Dir(path))
			waiting = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// buildInto downloads the module and builds its commands into a temporary
// directory next to dir, then renames it to dir in one step.
func buildInto(ctx context.Context, w io.Writer, root, dir string, b build) error {
	src, err := moduleDir(ctx, b.module+"@"+b.version)
	if err != nil {
		return err
	}
	// Under the lock, temporary directories of this build are leftovers of
	// a process that died while building.
	stale, _ := filepath.Glob(filepath.Join(root, ".build-"+b.key()+"-*"))
	for _, d := range stale {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp(root, ".build-"+b.key()+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op after the rename succeeded

	args := []string{"build", "-o", tmp + string(filepath.Separator)}
	if b.tags != "" {
		args = append(args, "-tags", b.tags)
	}
	args = append(args, b.pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = src // the module's own go.mod and replace directives apply
	cmd.Env = goEnv()
	cmd.SysProcAttr = childAttr()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out

	fmt.Fprintf(w, "regtest: building %v from %s@%s into %s (a cold build can take several minutes)\n",
		b.bins, b.module, b.version, dir)
	start := time.Now()
	if err := runWithProgress(cmd, w, b.bins, start); err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, tail(out.String(), 40))
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp made it 0700
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	fmt.Fprintf(w, "regtest: built %v in %s\n", b.bins, time.Since(start).Round(time.Second))
	return nil
}

// runWithProgress runs cmd, reporting the elapsed time every
// progressInterval.
func runWithProgress(cmd *exec.Cmd, w io.Writer, what []string, start time.Time) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(progressInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			fmt.Fprintf(w, "regtest: still building %v, %s elapsed\n", what, time.Since(start).Round(time.Second))
		}
	}
}

// moduleDir downloads mod ("path@version") into the module cache and returns
// its directory there.
func moduleDir(ctx context.Context, mod string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", mod)
	cmd.Dir = os.TempDir() // outside any module or workspace
	cmd.Env = goEnv()
	cmd.SysProcAttr = childAttr()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jsonErr := json.Unmarshal(out, &info); jsonErr == nil && info.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", mod, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w: %s", mod, err, stderr.String())
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no Dir in output", mod)
	}
	return info.Dir, nil
}

// goEnv is the environment of the go commands: no workspace and no inherited
// GOFLAGS (the module cache is read-only, so -mod=readonly).
func goEnv() []string {
	return append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
}
