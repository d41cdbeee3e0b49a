// Package lab runs orderflow's stacks from a typed topology: a Stack of
// Nodes (PostgreSQL, Redis, the Temporal dev server, the payment simulators,
// the worker, the gateway...), each with its address and ports, the process
// that runs it, the check that says it is ready, and the faults that break
// it. The state of a running stack (pids, ports, who started what) is kept in
// a file under its data directory, so that `orderflow-dev lab down`, the
// chaos run and the bench find its processes by name.
//
// Every wait polls a real readiness condition, with a bound and an error
// that names what did not come up and where its log is.
package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is how a node runs: one command in a session of its own, so that
// a Ctrl-C meant for the lab does not reach it, and stopping its process
// group stops its children too.
type Process struct {
	Command []string
	Env     []string // added to the lab's own environment
	Dir     string
	Log     string // stdout and stderr are appended here
	// Output, when set, receives stdout and stderr instead of Log (a
	// test's own log, a scanner).
	Output io.Writer
	// StopSignal asks the process to stop (default SIGTERM; PostgreSQL's
	// fast shutdown is SIGINT); after Grace (default 10 s) it gets SIGKILL.
	StopSignal syscall.Signal
	Grace      time.Duration
	// Credential, when set, runs the process as another user (PostgreSQL
	// refuses to run as root).
	Credential *syscall.Credential
	// DieWithParent kills the process when the one that started it ends
	// (a test's helper server must not outlive a crashed test binary).
	DieWithParent bool
}

// Running is a started process: its pid, which is also its process group.
type Running struct {
	Pid  int
	done chan struct{}
	err  error
}

// Start starts the process and returns at once.
func (p Process) Start() (*Running, error) {
	if len(p.Command) == 0 {
		return nil, errors.New("start: no command")
	}
	if p.Log != "" {
		if err := os.MkdirAll(filepath.Dir(p.Log), 0o755); err != nil {
			return nil, fmt.Errorf("start %s: %w", p.Command[0], err)
		}
	}
	cmd := exec.Command(p.Command[0], p.Command[1:]...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Dir = p.Dir
	if p.Output != nil {
		cmd.Stdout, cmd.Stderr = p.Output, p.Output
	} else {
		logf, err := openLog(p.Log)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", p.Command[0], err)
		}
		defer logf.Close()
		cmd.Stdout, cmd.Stderr = logf, logf
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: p.Credential}
	if p.DieWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", strings.Join(p.Command, " "), err)
	}
	r := &Running{Pid: cmd.Process.Pid, done: make(chan struct{})}
	// Reaped here, so that a process which exits does not linger as a
	// zombie that still answers kill -0.
	go func() { r.err = cmd.Wait(); close(r.done) }()
	return r, nil
}

// Exited reports whether the process has ended, and how.
func (r *Running) Exited() (bool, error) {
	select {
	case <-r.done:
		return true, r.err
	default:
		return false, nil
	}
}

// Wait waits for the process to end and returns its exit error.
func (r *Running) Wait() error { <-r.done; return r.err }

func openLog(path string) (*os.File, error) {
	if path == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// Alive reports whether pid names a live process (not a zombie).
func Alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true // no /proc: kill -0 is all we know
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// StopGroup sends sig to the process group pid leads and waits up to grace
// for its leader to end; then it sends SIGKILL to the group and waits for
// the leader again. It returns an error only if the process outlives that.
func StopGroup(pid int, sig syscall.Signal, grace time.Duration) error {
	if !Alive(pid) {
		return nil
	}
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	if grace == 0 {
		grace = 10 * time.Second
	}
	signalGroup(pid, sig)
	if waitGone(pid, grace) {
		signalGroup(pid, syscall.SIGKILL) // children the leader left behind
		return nil
	}
	signalGroup(pid, syscall.SIGKILL)
	if !waitGone(pid, 5*time.Second) {
		return fmt.Errorf("stop: process %d did not end after SIGKILL", pid)
	}
	return nil
}

func signalGroup(pid int, sig syscall.Signal) {
	if syscall.Kill(-pid, sig) != nil {
		_ = syscall.Kill(pid, sig)
	}
}

func waitGone(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; {
		if !Alive(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail returns the last n bytes of a log, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(b, off)
	return strings.TrimSpace(string(b))
}
