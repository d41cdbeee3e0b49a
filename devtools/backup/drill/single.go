package drill

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/orderflow/orderflow/devtools/backup"
	"github.com/orderflow/orderflow/devtools/ha"
	"github.com/orderflow/orderflow/devtools/lab"
)

// single is the single-node stack's PostgreSQL: a private cluster the drill
// runs, archiving to a repository under the drill's directory.
type single struct {
	d   *Drill
	srv backup.Server
}

// buildSingle lays the drill's stack out: make run's topology on free
// ports with a private PostgreSQL, its Temporal dev server replaced by a
// Temporal server on that PostgreSQL, without the parts an order confirmed
// without fulfillment never reaches (carrier, mailpit, NATS).
func (d *Drill) buildSingle(ctx context.Context) error {
	if err := os.RemoveAll(d.Data); err != nil {
		return err
	}
	dev, err := lab.NewDev(lab.Options{Profile: "chaos", Root: d.Root, Data: d.Data, Ports: "free"})
	if err != nil {
		return err
	}
	// Temporal keeps its membership ports in a smallint: the server's
	// ports stay under 32768, on a loopback address made of the stack's own
	// (free) temporal port, so drills side by side share none.
	base, host := d.TemporalPortBase, lab.Loopback
	if base == 0 {
		base, host = 7400, lab.ClusterHost(dev.Config.Ports)
	}
	bin, err := ha.FindBinaries(ctx, d.Root)
	if err != nil {
		return err
	}
	cfg := dev.Config
	pgPort := cfg.Ports["postgres"]
	tc := &ha.TemporalCluster{Root: d.Root, Data: filepath.Join(cfg.Data, "temporal"), Bin: bin, PortBase: base, Host: host, Servers: 1, Out: d.Out,
		DB: ha.Postgres{Addr: net.JoinHostPort(lab.Loopback, strconv.Itoa(pgPort)), User: "postgres", Password: "postgres",
			Database: "orderflow_temporal", Visibility: "orderflow_temporal_vis"}}
	cfg.Env["TEMPORAL_ADDRESS"] = tc.Address()
	// Orders end CONFIRMED: no carrier, no mail, no event relay.
	cfg.Env["FULFILLMENT_ENABLED"], cfg.Env["SMTP_URL"], cfg.Env["NATS_URL"] = "false", "", ""
	if dev, err = lab.BuildDev(cfg); err != nil {
		return err
	}
	cred, err := lab.PostgresUser()
	if err != nil {
		return err
	}
	pgDir := filepath.Join(cfg.Data, "postgres")
	s := &single{d: d}
	d.c = s
	s.srv = backup.Server{Root: d.Root, Dir: filepath.Join(cfg.Data, "pgbackrest"), Repo: backup.Repo{Path: filepath.Join(cfg.Data, "pgbackrest", "repo")},
		PGData: filepath.Join(pgDir, "data"), PGPort: pgPort, PGSocket: filepath.Join(pgDir, "sock"), Credential: cred}
	var nodes []*lab.Node
	for _, n := range dev.Nodes {
		switch n.Name {
		case "temporal", "carrier", "mailpit", "nats":
			continue
		case "postgres":
			s.archiving(n, tc)
			nodes = append(nodes, n)
			for _, t := range tc.Stack().Nodes {
				if t.Name == "temporal-lb" {
					// One server: the balancer's second backend is the same one.
					t.Proc.Env = append(t.Proc.Env, "TEMPORAL_FRONTEND_2="+tc.FrontendAddr(0))
				}
				nodes = append(nodes, t)
			}
		default:
			nodes = append(nodes, n)
		}
	}
	d.stack = lab.NewStack(cfg, nodes)
	d.stack.Out = d.Out
	d.api = dev.APIURL()
	return nil
}

func (s *single) up(ctx context.Context) error {
	s.d.logf("starting the stack (PostgreSQL archiving to %s, Temporal on it)", s.srv.Repo.Path)
	return s.d.stack.Up(ctx)
}

func (s *single) backup(ctx context.Context, typ string) (backup.Info, error) {
	return s.srv.Backup(ctx, typ)
}

func (s *single) archived(ctx context.Context) error { return s.srv.Check(ctx) }

func (s *single) repo() (backup.Server, error) { return s.srv, nil }

// lose is SIGKILL of PostgreSQL and its data directory moved away.
func (s *single) lose(context.Context) error {
	s.d.logf("losing PostgreSQL (SIGKILL, data directory gone)")
	if err := s.d.stack.Kill("postgres"); err != nil {
		return err
	}
	if err := s.d.stack.Down(); err != nil {
		return err
	}
	return os.Rename(s.srv.PGData, s.srv.PGData+".lost")
}

// archiving makes the PostgreSQL node archive to the repository from its
// first segment, create the stanza once it serves, and hold Temporal's
// schema.
func (s *single) archiving(n *lab.Node, tc *ha.TemporalCluster) {
	before, after := n.Before, n.After
	n.Before = func(ctx context.Context) error {
		if err := before(ctx); err != nil {
			return err
		}
		if err := s.srv.Write(); err != nil {
			return err
		}
		return s.srv.ConfigureDataDir()
	}
	n.After = func(ctx context.Context) error {
		if err := after(ctx); err != nil {
			return err
		}
		if err := Promoted(ctx, s.d.stack.Config.Env["DATABASE_URL"]); err != nil {
			return err
		}
		if err := s.srv.CreateStanza(ctx); err != nil {
			return err
		}
		return tc.Schema(ctx)
	}
	// A restored server replays the archive before it accepts sessions.
	n.ReadyTimeout = 2 * time.Minute
}

// restore restores to T into a fresh data directory where the lost one
// was, starts PostgreSQL on it (it replays to T and promotes), then the
// rest of the stack.
func (s *single) restore(ctx context.Context, rep *Report) error {
	d := s.d
	start := time.Now()
	if err := s.srv.Restore(ctx, s.srv.PGData, backup.Target{Time: rep.Target}); err != nil {
		return err
	}
	if err := d.stack.Start(ctx, "postgres"); err != nil {
		return err
	}
	rep.RestoreTargetSeconds = time.Since(start).Seconds()
	start = time.Now()
	if err := d.stack.Up(ctx); err != nil {
		return err
	}
	rep.StackUpSeconds = time.Since(start).Seconds()
	d.logf("restore to T: %.1fs; the stack serves on it after %.1fs more", rep.RestoreTargetSeconds, rep.StackUpSeconds)
	return nil
}
