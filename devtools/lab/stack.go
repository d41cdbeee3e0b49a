package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// A Node is one part of a stack: a server, or a job that runs to its end
// (migrations, the demo catalog).
type Node struct {
	Name string
	// Host is the address the node listens on and is reached at; empty
	// means loopback (127.0.0.1). A node in a network namespace of its own
	// (issue 13's hosts) gets that namespace's address here and its name
	// in Netns.
	Host string
	// Netns names the Linux network namespace the node runs in (its
	// host; several nodes may share one); empty is the lab's own. The lab
	// makes it, with Host as its address on the stack's Network, before
	// the node starts, and removes it at Down.
	Netns string
	Ports Ports // the ports it listens on, by name
	Proc  Process
	// Job: the process runs to its end and must exit 0; it is not kept.
	Job bool
	// Reuse, when it passes before the node starts, means a server already
	// answers there (a shared PostgreSQL): the lab uses it and never stops it.
	Reuse Check
	// Ready is the node's health wait, bounded by ReadyTimeout (default 30 s).
	Ready        Check
	ReadyTimeout time.Duration
	// Before runs before the process starts (directories, initdb); After
	// once it is ready, also when it was reused (search attributes).
	Before func(ctx context.Context) error
	After  func(ctx context.Context) error
}

// Addr is host:port of the node's named port.
func (n *Node) Addr(port string) string { return fmt.Sprintf("%s:%d", n.HostAddr(), n.Ports[port]) }

// HostAddr is the node's address: Host, or loopback when it is empty.
func (n *Node) HostAddr() string {
	if n.Host == "" {
		return Loopback
	}
	return n.Host
}

// Loopback is the address of a node that names no host.
const Loopback = "127.0.0.1"

// Stack is a topology and, once up, the state of its processes.
type Stack struct {
	Config Config
	Nodes  []*Node
	Out    io.Writer // progress lines; os.Stderr when nil
	// Groups name sets of nodes (a region's) that Cut and Heal take as
	// one: `orderflow-dev lab cut east`.
	Groups map[string][]string

	state *State
}

// NewStack returns a stack of nodes, with the state found under
// cfg.Data when there is one (a stack already up).
func NewStack(cfg Config, nodes []*Node) *Stack {
	s := &Stack{Config: cfg, Nodes: nodes, state: &State{Config: cfg, Nodes: map[string]*NodeState{}}}
	if st, err := LoadState(cfg.Data); err == nil {
		s.state.Nodes = st.Nodes
	}
	return s
}

// Node returns the node called name.
func (s *Stack) Node(name string) (*Node, error) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("lab: no node %q in the %s stack", name, s.Config.Profile)
}

// sync reads the state file again: another process (the chaos run,
// `orderflow-dev lab kill`) may have started or stopped nodes since.
func (s *Stack) sync() {
	if st, err := LoadState(s.Config.Data); err == nil {
		s.state.Nodes = st.Nodes
	}
}

// State returns a node's state (a zero one when it never ran).
func (s *Stack) State(name string) NodeState {
	s.sync()
	if st := s.state.Nodes[name]; st != nil {
		return *st
	}
	return NodeState{}
}

func (s *Stack) logf(format string, args ...any) {
	out := s.Out
	if out == nil {
		out = os.Stderr
	}
	fmt.Fprintf(out, "\033[1;34m==>\033[0m "+format+"\n", args...)
}

func (s *Stack) save() error { s.state.Config = s.Config; return s.state.Save(s.Config.Data) }

// Up starts every node in order, skipping those already running. On an
// error the nodes it started stay up: Down stops them.
func (s *Stack) Up(ctx context.Context) error {
	for _, n := range s.Nodes {
		if err := s.up(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stack) up(ctx context.Context, n *Node) error {
	s.sync()
	if st := s.state.Nodes[n.Name]; st != nil && st.Started && Alive(st.Pid) {
		return nil
	}
	if n.Reuse != nil && n.Reuse.Check(ctx) == nil {
		s.logf("%s answers at %s: using it", n.Name, n.Reuse)
		s.state.Nodes[n.Name] = &NodeState{}
		if err := s.save(); err != nil {
			return err
		}
		return s.after(ctx, n)
	}
	return s.Start(ctx, n.Name)
}

func (s *Stack) after(ctx context.Context, n *Node) error {
	if n.After == nil {
		return nil
	}
	if err := n.After(ctx); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	return nil
}

// Start starts one node (again) as Up would, and waits until it is ready.
func (s *Stack) Start(ctx context.Context, name string) error {
	n, err := s.Node(name)
	if err != nil {
		return err
	}
	s.sync()
	if n.Before != nil {
		if err := n.Before(ctx); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	if n.Job {
		s.logf("%s", n.Name)
	} else {
		s.logf("starting %s%s", n.Name, describePorts(n))
	}
	if err := s.ensureHost(ctx, n); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	proc := n.Proc
	if n.Netns != "" {
		proc.Command, proc.Credential = inNetns(n.Netns, proc.Credential, proc.Command), nil
	}
	r, err := proc.Start()
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	if n.Job {
		if err := r.Wait(); err != nil {
			return fmt.Errorf("%s: %w (see %s):\n%s", n.Name, err, n.Proc.Log, tail(n.Proc.Log, 2000))
		}
		return s.after(ctx, n)
	}
	s.state.Nodes[n.Name] = &NodeState{Started: true, Pid: r.Pid, Log: n.Proc.Log}
	if err := s.save(); err != nil {
		return err
	}
	if n.Ready != nil {
		timeout := n.ReadyTimeout
		if timeout == 0 {
			timeout = 30 * time.Second
		}
		if err := Wait(ctx, n.Ready, timeout, r); err != nil {
			return fmt.Errorf("%s did not come up (see %s): %w\n%s", n.Name, n.Proc.Log, err, tail(n.Proc.Log, 1500))
		}
	}
	return s.after(ctx, n)
}

func describePorts(n *Node) string {
	if len(n.Ports) == 0 {
		return ""
	}
	s := " on"
	for _, name := range sortedKeys(n.Ports) {
		s += fmt.Sprintf(" %s %s", name, n.Addr(name))
	}
	return s
}

// Stop stops one node the lab started: its stop signal, then SIGKILL after
// its grace period. A node the lab did not start is left alone.
func (s *Stack) Stop(name string) error {
	n, err := s.Node(name)
	if err != nil {
		return err
	}
	s.sync()
	st := s.state.Nodes[name]
	if st == nil || !st.Started {
		return nil
	}
	if err := StopGroup(st.Pid, n.Proc.StopSignal, n.Proc.Grace); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	delete(s.state.Nodes, name)
	return s.save()
}

// Kill ends one node with SIGKILL, as a crash would, and waits until it is
// gone. A node on a host of its own (Netns) takes its host down with it:
// every process in the namespace gets SIGKILL too.
func (s *Stack) Kill(name string) error {
	n, err := s.Node(name)
	if err != nil {
		return err
	}
	s.sync()
	st := s.state.Nodes[name]
	if st == nil || !st.Started {
		return fmt.Errorf("lab: %s was not started by this stack", name)
	}
	signalGroup(st.Pid, 9)
	if !waitGone(st.Pid, 5*time.Second) {
		return fmt.Errorf("lab: %s (pid %d) outlived SIGKILL", name, st.Pid)
	}
	if n.Netns != "" {
		if err := killHost(n.Netns); err != nil {
			return fmt.Errorf("lab: %s: %w", name, err)
		}
	}
	delete(s.state.Nodes, name)
	return s.save()
}

// Restart stops a node the lab started and starts it again.
func (s *Stack) Restart(ctx context.Context, name string) error {
	s.sync()
	st := s.state.Nodes[name]
	if st == nil || !st.Started {
		return fmt.Errorf("lab: %s was not started by this stack: not restarting what others use", name)
	}
	if err := s.Stop(name); err != nil {
		return err
	}
	return s.Start(ctx, name)
}

// Down stops, in reverse order, every node the lab started, then removes
// the stack's hosts (network namespaces) and their bridge.
func (s *Stack) Down() error {
	s.sync()
	var errs []error
	for i := len(s.Nodes) - 1; i >= 0; i-- {
		n := s.Nodes[i]
		if st := s.state.Nodes[n.Name]; st != nil && st.Started {
			s.logf("stopping %s", n.Name)
			errs = append(errs, s.Stop(n.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := s.removeHosts(context.Background()); err != nil {
		return err
	}
	s.state.Nodes = map[string]*NodeState{}
	return s.save()
}

// Status is one line of `orderflow-dev lab status`.
type Status struct {
	Name    string
	Host    string // the node's address
	Netns   string // its host's namespace, when it has one
	Ports   Ports
	Pid     int
	Started bool
	Running bool
	Log     string
}

// Status describes every server node.
func (s *Stack) Status() []Status {
	s.sync()
	var out []Status
	for _, n := range s.Nodes {
		if n.Job {
			continue
		}
		st := s.State(n.Name)
		out = append(out, Status{Name: n.Name, Host: n.HostAddr(), Netns: n.Netns, Ports: n.Ports, Pid: st.Pid, Started: st.Started,
			Running: st.Started && Alive(st.Pid), Log: n.Proc.Log})
	}
	return out
}

// A Fault breaks part of a stack and undoes it: a process killed or
// restarted, a host cut off the network (CutNode).
type Fault interface {
	Inject(ctx context.Context) error
	// Heal undoes Inject; a fault that heals by itself returns nil.
	Heal(ctx context.Context) error
	String() string
}

// KillNode is SIGKILL of a node, healed by starting it again.
type KillNode struct {
	Stack *Stack
	Name  string
}

// Inject implements Fault.
func (f KillNode) Inject(context.Context) error { return f.Stack.Kill(f.Name) }

// Heal implements Fault.
func (f KillNode) Heal(ctx context.Context) error { return f.Stack.Start(ctx, f.Name) }

func (f KillNode) String() string { return "kill " + f.Name }

// RestartNode is a clean stop and start of a node.
type RestartNode struct {
	Stack *Stack
	Name  string
}

// Inject implements Fault.
func (f RestartNode) Inject(ctx context.Context) error { return f.Stack.Restart(ctx, f.Name) }

// Heal implements Fault.
func (f RestartNode) Heal(context.Context) error { return nil }

func (f RestartNode) String() string { return "restart " + f.Name }
