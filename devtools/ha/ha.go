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
// part's Ports), so several stacks can run side by side.
package ha

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/orderflow/orderflow/devtools/lab"
)

// Versions of the pinned Temporal builds of the cluster topology: the
// server the CLI's dev server embeds (lab.TemporalCLIVersion), so both run
// the same schema, and the Web UI server that CLI embeds.
const (
	TemporalServerVersion = "1.29.1"
	TemporalUIVersion     = "2.42.1"
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
