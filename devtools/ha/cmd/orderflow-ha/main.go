// Command orderflow-ha brings orderflow's HA building blocks up and down on
// loopback, for drills and for running the e2e tests against them:
//
//	orderflow-ha [flags] temporal up|down|status|kill N|start N
//
// Each part keeps its processes' state under -data, so `down` in another
// shell stops what `up` started.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/orderflow/orderflow/devtools/ha"
	"github.com/orderflow/orderflow/devtools/lab"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "orderflow-ha:", err)
		os.Exit(1)
	}
}

func run() error {
	root := flag.String("root", ".", "the checkout")
	data := flag.String("data", ".data/ha", "where logs and state go")
	base := flag.Int("base", 7300, "port base of the part (see devtools/ha)")
	pgAddr := flag.String("pg-addr", "127.0.0.1:5432", "Temporal's PostgreSQL: host:port[,host:port]")
	pgUser := flag.String("pg-user", "temporal", "PostgreSQL role (may create databases)")
	pgPassword := flag.String("pg-password", "temporal", "its password")
	pgDB := flag.String("pg-db", "temporal", "persistence database; visibility is <name>_vis")
	codec := flag.String("codec", "", "the Web UI's codec endpoint (the gateway's /codec)")
	flag.Parse()
	args := flag.Args()
	if len(args) < 2 || args[0] != "temporal" {
		return fmt.Errorf("usage: orderflow-ha [flags] temporal up|down|status|kill N|start N")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	abs, err := filepath.Abs(*root)
	if err != nil {
		return err
	}
	dataAbs, err := filepath.Abs(*data)
	if err != nil {
		return err
	}
	bin, err := ha.FindBinaries(ctx, abs)
	if err != nil {
		return err
	}
	c := &ha.TemporalCluster{Root: abs, Data: filepath.Join(dataAbs, "temporal"), Bin: bin, PortBase: *base, UI: true,
		CodecEndpoint: *codec, DB: ha.Postgres{Addr: *pgAddr, User: *pgUser, Password: *pgPassword,
			Database: *pgDB, Visibility: *pgDB + "_vis"}}
	node := func() (string, error) {
		if len(args) < 3 {
			return "", fmt.Errorf("%s: which server (1, 2)?", args[1])
		}
		n, err := strconv.Atoi(args[2])
		if err != nil || n < 1 {
			return "", fmt.Errorf("%s %q: want a server number", args[1], args[2])
		}
		return ha.ServerName(n - 1), nil
	}
	switch args[1] {
	case "up":
		if err := c.Up(ctx); err != nil {
			return err
		}
		fmt.Printf("Temporal cluster up: frontend %s (HAProxy), Web UI %s\n", c.Address(), c.UIURL())
		return nil
	case "down":
		return c.Down()
	case "status":
		for _, s := range c.Stack().Status() {
			fmt.Printf("%-12s running=%-5t pid=%-7d %v %s\n", s.Name, s.Running, s.Pid, s.Ports, s.Log)
		}
		return nil
	case "kill":
		name, err := node()
		if err != nil {
			return err
		}
		return lab.KillNode{Stack: c.Stack(), Name: name}.Inject(ctx)
	case "start":
		name, err := node()
		if err != nil {
			return err
		}
		return c.Stack().Start(ctx, name)
	}
	return fmt.Errorf("unknown command %q", args[1])
}
