package regtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// stopTimeout bounds how long a daemon may take to shut down after SIGTERM
// before it is killed.
const stopTimeout = 20 * time.Second

// process is a running daemon whose output goes to a log file.
//
// Every child runs in its own process group (so a Ctrl-C in the terminal
// reaches only the parent, which then stops the network in order) and with
// Pdeathsig SIGKILL, so the kernel kills it if the parent dies without
// calling Stop. Pdeathsig fires when the OS thread that forked the child
// exits, not the process; the Go runtime only ends a thread when a goroutine
// exits while locked to it with runtime.LockOSThread, and this package never
// locks threads, so in practice the signal comes when the parent process
// exits. Callers must not start a network from a goroutine that is locked to
// its thread and then exits.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
}

// startProcess runs bin with args, appending its stdout and stderr to
// logPath.
func startProcess(name, logPath, bin string, args ...string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logFile.Close() // the child holds its own copy
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// childAttr returns the attributes of every child process: its own process
// group and SIGKILL when the parent dies (see process).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// exited reports an error if the process is no longer running.
func (p *process) exited() error {
	select {
	case <-p.done:
		return p.errorf("exited unexpectedly: %v", p.waitErr)
	default:
		return nil
	}
}

// errorf returns an error about p that ends with the tail of its log.
func (p *process) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %s\n--- last lines of %s ---\n%s", p.name, fmt.Sprintf(format, args...),
		p.logPath, p.logTail(30))
}

func (p *process) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	return tail(string(b), n)
}

// signal sends sig to the process.
func (p *process) signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	return nil
}

// stop sends SIGTERM and waits for a clean exit, killing the process group
// if the process does not exit within stopTimeout.
func (p *process) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", p.name, err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a frozen process must run to exit
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("stop %s: no exit %s after SIGTERM, killed", p.name, stopTimeout)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. The listeners are
// held until all ports are chosen, so the ports differ from each other; another
// process may still take one before the daemon binds it.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func hostPort(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
