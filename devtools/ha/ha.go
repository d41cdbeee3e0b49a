// Package ha brings up orderflow's high-availability building blocks on
// loopback, as nodes of a lab.Stack: a Temporal cluster of two server
// processes on PostgreSQL behind HAProxy, Redis with a replica and three
// Sentinels, and PostgreSQL under Patroni with a three-member etcd. Each
// engine runs as it would in production, from the configuration the
// repository ships (temporal-config/cluster, deploy/redis, deploy/postgres,
// deploy/haproxy); this package only starts the processes, waits for the
// conditions that say they serve, and breaks them on purpose.
//
// Every part takes a port base and lays its ports out from it (see each
// part's Ports), so several stacks can run side by side. A part's Hosts
// may give each node a host of its own (an address and a network
// namespace: the lab's ha profile); the port layout stays the same.
package ha

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/devtools/lab"
)

// Versions of the pinned Temporal builds of the cluster topology
// (lab.TemporalServerVersion, lab.TemporalUIVersion).
const (
	TemporalServerVersion = lab.TemporalServerVersion
	TemporalUIVersion     = lab.TemporalUIVersion
)

// run runs a command to its end, returning its output in the error when it
// fails.
func run(ctx context.Context, dir string, env []string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, lastLines(string(out), 15))
	}
	return string(out), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls c until it passes, for at most timeout.
func waitFor(ctx context.Context, c lab.Check, timeout time.Duration) error {
	return lab.Wait(ctx, c, timeout, nil)
}

// checkFunc is a lab.Check made of a function.
type checkFunc struct {
	name string
	f    func(ctx context.Context) error
}

func (c checkFunc) Check(ctx context.Context) error { return c.f(ctx) }
func (c checkFunc) String() string                  { return c.name }

// Front is where a part's entry points listen when they take the
// single-node stack's ports (the lab's ha profile, TEMPORAL_BACKEND=cluster)
// instead of ports from the part's base. Host is the address clients dial;
// the processes bind every interface, so both the lab's loopback (the
// README's curl, the CLI) and the hosts behind the bridge reach them.
type Front struct {
	Host  string
	Port  int // the load balancer
	UI    int // Temporal's Web UI
	Stats int // the load balancer's status page
}

// hostOf is where the node called name runs: its entry in hosts, else
// def (a part's Host) in the lab's own namespace.
func hostOf(hosts map[string]lab.Host, def, name string) lab.Host {
	if h, ok := hosts[name]; ok {
		return h
	}
	return lab.Host{Addr: def}
}

// place puts a node on its host.
func place(n *lab.Node, h lab.Host) *lab.Node { n.Host, n.Netns = h.Addr, h.Netns; return n }

// bind is the address an entry point behind f binds port at: every
// interface, or loopback only when clients dial it there.
func (f *Front) bind(port int) string {
	if f.Host == lab.Loopback {
		return net.JoinHostPort(lab.Loopback, strconv.Itoa(port))
	}
	return net.JoinHostPort("0.0.0.0", strconv.Itoa(port))
}
