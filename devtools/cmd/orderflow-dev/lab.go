package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	// The ha profile and TEMPORAL_BACKEND=cluster are built by devtools/ha,
	// which registers them with the lab.
	_ "github.com/orderflow/orderflow/devtools/ha"
	"github.com/orderflow/orderflow/devtools/lab"
)

const labUsage = `usage: orderflow-dev lab <command> [flags]

commands:
  up                 start the stack in the background (make up) and print where it answers
  run                start it in the foreground, following the gateway's and worker's logs; Ctrl-C stops it (make run)
  down               stop what up started (make down)
  status             each node: ports, pid, running
  kill NODE          SIGKILL one node, as a crash would (a node on a host of its own: every process on that host)
  stop NODE          stop one node the lab started, as down would (the others run on)
  start NODE         start one node again, as up started it
  cut NODE           take the node's host off the network (its link down; ha profile)
  heal NODE          put it back
  restart NODE       stop and start one node the lab started
  with -- CMD ARGS   a fresh stack up, CMD run with its environment (STACK_DATA_DIR names it), the stack down
  env                print the environment of a running stack as export lines
  tool NAME          print the path of a pinned tool (temporal, workflowcheck, stripe-mock), building it once

flags (before the node or the --):
  --profile dev|smoke|chaos|bench|ha|test  which stack (default dev: make run's ports and .data/; ha: docs/ha.md)
  --data DIR                             its files and state (default: the profile's, or STACK_DATA_DIR for dev)
  --ports default|free|base:N            how ports are picked (default: the profile's, or LAB_PORTS)
  --print-env                            with up: print the stack's environment as export lines on stdout

environment: TEMPORAL_BACKEND=dev|cluster  Temporal as the dev server (default) or a two-server cluster on PostgreSQL
`

// labStack is a stack the lab command drives: the single-node stack of a
// profile, or the suite's test servers.
type labStack interface {
	Up(ctx context.Context) error
	Down() error
	Environ() []string
}

type devStack struct{ *lab.Dev }

func (d devStack) Up(ctx context.Context) error {
	if err := d.Build(); err != nil {
		return err
	}
	return d.UpFresh(ctx)
}

func runLab(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, labUsage)
		return errors.New("lab: no command")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("lab "+cmd, flag.ContinueOnError)
	profile := fs.String("profile", "dev", "dev, smoke, chaos, bench, ha or test")
	data := fs.String("data", "", "the stack's directory")
	ports := fs.String("ports", "", "default, free or base:N")
	printEnv := fs.Bool("print-env", false, "with up: print the environment as export lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := checkoutAndData(*profile, data)
	if err != nil {
		return err
	}
	switch cmd {
	case "tool":
		if fs.NArg() != 1 {
			return errors.New("lab tool: name one tool")
		}
		p, err := lab.Tool(root, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Println(p)
		return nil
	case "up", "run", "with":
		s, err := freshStack(root, *profile, *data, *ports)
		if err != nil {
			return err
		}
		if err := s.Up(ctx); err != nil {
			_ = s.Down()
			return err
		}
		switch cmd {
		case "up":
			if *printEnv {
				printExports(os.Stdout, s.Environ())
			} else if d, ok := s.(devStack); ok {
				d.Banner(os.Stdout)
			}
			return nil
		case "run":
			return runForeground(ctx, s)
		}
		err = withStack(ctx, s, fs.Args())
		return errors.Join(err, s.Down())
	}
	s, err := loadStack(*profile, *data)
	if err != nil {
		if cmd == "down" && errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "lab: no stack under %s\n", *data)
			return nil
		}
		return err
	}
	st := stackOf(s)
	switch cmd {
	case "down":
		return s.Down()
	case "env":
		printExports(os.Stdout, s.Environ())
		return nil
	case "status":
		w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NODE\tHOST\tPORTS\tPID\tSTATE\tLOG")
		for _, n := range st.Status() {
			state := "not started by the lab"
			switch {
			case n.Running:
				state = "running"
			case n.Started:
				state = "exited"
			}
			var ps []string
			for k, v := range n.Ports {
				ps = append(ps, fmt.Sprintf("%s=%d", k, v))
			}
			host := n.Host
			if n.Netns != "" {
				host += " (" + n.Netns + ")"
				if up, err := lab.LinkUp(n.Netns); err == nil && !up {
					host += " cut"
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", n.Name, host, strings.Join(ps, ","), n.Pid, state, n.Log)
		}
		return w.Flush()
	case "kill", "stop", "start", "restart", "cut", "heal":
		if fs.NArg() != 1 {
			return fmt.Errorf("lab %s: name one node", cmd)
		}
		switch cmd {
		case "kill":
			return st.Kill(fs.Arg(0))
		case "stop":
			return st.Stop(fs.Arg(0))
		case "start":
			return st.Start(ctx, fs.Arg(0))
		case "cut":
			return st.Cut(ctx, fs.Arg(0))
		case "heal":
			return st.Heal(ctx, fs.Arg(0))
		}
		return st.Restart(ctx, fs.Arg(0))
	}
	return fmt.Errorf("lab: unknown command %q\n%s", cmd, labUsage)
}

// checkoutAndData finds the checkout and fills in the profile's directory
// when data is empty.
func checkoutAndData(profile string, data *string) (string, error) {
	root, err := checkout()
	if err == nil && *data == "" {
		*data = defaultData(root, profile)
	}
	return root, err
}

func defaultData(root, profile string) string {
	if profile == "test" {
		return filepath.Join(root, ".data", "test-run")
	}
	if p, ok := lab.Profiles[profile]; ok {
		if profile == "dev" && os.Getenv("STACK_DATA_DIR") != "" {
			return os.Getenv("STACK_DATA_DIR")
		}
		return filepath.Join(root, p.Data)
	}
	return filepath.Join(root, ".data", profile)
}

// freshStack builds a profile's stack; a fresh profile's old files are
// removed first (after stopping what ran there).
func freshStack(root, profile, data, ports string) (labStack, error) {
	if profile == "test" {
		t, err := lab.NewTestServers(root, data, ports, nil)
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	// What a stack runs and is missing is installed first, as on a fresh
	// machine (the install script skips what is there).
	need := []string{"tools", "postgres", "redis"}
	if p := lab.Profiles[profile]; p.Topology == "ha" {
		need = append(need, "sentinel", "patroni", "etcd", "haproxy", "iproute2", "pgbackrest")
	} else if os.Getenv("TEMPORAL_BACKEND") == "cluster" {
		need = append(need, "haproxy")
	}
	if err := install(root, need...); err != nil {
		return nil, err
	}
	if p, ok := lab.Profiles[profile]; ok && p.Fresh {
		if err := lab.Wipe(data); err != nil {
			return nil, err
		}
	}
	d, err := lab.NewDev(lab.Options{Profile: profile, Root: root, Data: data, Ports: ports})
	if err != nil {
		return nil, err
	}
	return devStack{d}, nil
}

// install runs devtools/install.sh, the one place that installs OS packages.
func install(root string, names ...string) error {
	cmd := exec.Command(filepath.Join(root, "devtools", "install.sh"), names...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("devtools/install.sh %s: %w", strings.Join(names, " "), err)
	}
	return nil
}

// loadStack finds the stack running under data from its state file.
func loadStack(profile, data string) (labStack, error) {
	if profile == "test" {
		return lab.LoadTestServers(data)
	}
	d, err := lab.LoadDev(data)
	if err != nil {
		return nil, err
	}
	return devStack{d}, nil
}

func stackOf(s labStack) *lab.Stack {
	switch v := s.(type) {
	case devStack:
		return v.Stack
	case *lab.TestServers:
		return v.Stack
	}
	panic("lab: unknown stack")
}

func printExports(w io.Writer, env []string) {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(w, "export %s='%s'\n", k, strings.ReplaceAll(v, "'", `'\''`))
	}
}

// runForeground prints the banner, follows the gateway's and the worker's
// logs until ctx ends (Ctrl-C), then stops the stack.
func runForeground(ctx context.Context, s labStack) error {
	d := s.(devStack)
	d.Banner(os.Stdout)
	fmt.Fprintln(os.Stderr, "==> Ctrl-C stops everything started here; following the gateway and worker logs")
	for _, name := range []string{"api", "worker", "gateway-1", "gateway-2", "worker-1", "worker-2"} {
		if n, err := d.Node(name); err == nil {
			go follow(ctx, n.Proc.Log, os.Stdout)
		}
	}
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "==> stopping")
	return s.Down()
}

// follow copies what is appended to path to w until ctx ends.
func follow(ctx context.Context, path string, w io.Writer) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Seek(0, io.SeekEnd)
	r := bufio.NewReader(f)
	for ctx.Err() == nil {
		line, err := r.ReadString('\n')
		if line != "" {
			_, _ = io.WriteString(w, line)
		}
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// withStack runs argv with the stack's environment.
func withStack(ctx context.Context, s labStack, argv []string) error {
	if len(argv) == 0 {
		return errors.New("lab with: no command after --")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), s.Environ()...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return nil
}

// checkout is the module root: ORDERFLOW_ROOT, else where go.mod is found
// from the working directory up.
func checkout() (string, error) {
	if r := os.Getenv("ORDERFLOW_ROOT"); r != "" {
		return filepath.Abs(r)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("lab: no go.mod above %s: run from the checkout or set ORDERFLOW_ROOT", dir)
		}
	}
}
