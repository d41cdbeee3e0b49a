package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/devtools/backup"
	"github.com/orderflow/orderflow/devtools/backup/drill"
	"github.com/orderflow/orderflow/devtools/ha"
	"github.com/orderflow/orderflow/devtools/lab"
)

// runRestoreDrill runs the restore drill (devtools/backup/drill) on a stack
// of its own, the single-node one or with --ha the ha profile, and fails
// when a check does not hold.
func runRestoreDrill(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("restore-drill", flag.ContinueOnError)
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	d := drill.Drill{Root: root, Out: os.Stdout}
	data := fs.String("data", "", "the drill's files, removed first (default .data/restore-drill, or .data/restore-drill-ha with --ha)")
	fs.BoolVar(&d.HA, "ha", false, "on the ha profile (Patroni; root: its hosts are network namespaces on LAB_NETWORK)")
	fs.StringVar(&d.Ports, "ports", "", "with --ha: the ports of its balancers, default, free or base:N (default LAB_PORTS, else free)")
	fs.IntVar(&d.TemporalPortBase, "temporal-port-base", 0, "single-node: 13 ports from this one for the Temporal server (0: free ones)")
	fs.IntVar(&d.Batch, "batch", 8, "orders placed in each step")
	results := fs.String("results", filepath.Join(root, "backup", "results"), "directory for the JSON report")
	// The environment first (DRILL_BATCH, BACKUP_TYPE...), the command line over it.
	if err := flagsFromEnv(fs, "DRILL_"); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	d.Data = *data
	switch {
	case d.Data != "":
	case d.HA:
		d.Data = filepath.Join(root, ".data", "restore-drill-ha")
	default:
		d.Data = filepath.Join(root, ".data", "restore-drill")
	}
	rep, err := d.Run(ctx)
	rep.Print(os.Stdout)
	if err != nil {
		return fmt.Errorf("restore-drill: %w", err)
	}
	path, err := rep.Write(*results)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s\n", path)
	if !rep.Passed {
		return errors.New("restore-drill: a check does not hold on the restored stack")
	}
	return nil
}

// haProfile loads the ha profile running under data; ok is false when the
// stack there is another topology.
func haProfile(data string) (p *ha.Profile, ok bool, err error) {
	st, err := lab.LoadState(data)
	if err != nil {
		return nil, false, fmt.Errorf("the stack under %s (make up first): %w", data, err)
	}
	if st.Config.Topology != "ha" {
		return nil, false, nil
	}
	p, err = ha.LoadProfile(data)
	if err != nil {
		return nil, true, err
	}
	p.Out = os.Stdout
	return p, true, nil
}

// profileData points data at the profile's stack (make's TOPOLOGY=ha:
// .data/ha-profile) unless --data was given.
func profileData(fs *flag.FlagSet, profile string, data *string) error {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "data" })
	if profile == "" || given {
		return nil
	}
	root, err := checkout()
	if err != nil {
		return err
	}
	*data = defaultData(root, profile)
	return nil
}

// stackServer loads the lab stack under data and returns it with the
// pgBackRest setup of its PostgreSQL (devServer).
func stackServer(data string) (*lab.Dev, backup.Server, bool, error) {
	d, err := lab.LoadDev(data)
	if err != nil {
		return nil, backup.Server{}, false, fmt.Errorf("the stack under %s (make up first): %w", data, err)
	}
	srv, private, err := devServer(d)
	return d, srv, private, err
}

// devServer is the pgBackRest setup of a lab stack's PostgreSQL: the
// stack's private cluster, or the machine's Debian cluster make run uses.
// BACKUP_REPO_PATH (default <data>/backup/repo) or BACKUP_S3_BUCKET,
// BACKUP_S3_ENDPOINT, BACKUP_S3_REGION, BACKUP_S3_URI_STYLE name the
// repository; BACKUP_RETENTION_DAYS its retention. It reports whether the
// cluster is the stack's private one.
func devServer(d *lab.Dev) (backup.Server, bool, error) {
	env := d.Config.Env
	root := d.Config.Root
	port := d.Config.Ports["postgres"]
	cred, err := lab.PostgresUser()
	if err != nil {
		return backup.Server{}, false, err
	}
	srv := backup.Server{Root: root, Dir: filepath.Join(d.Config.Data, "backup"), PGPort: port, Credential: cred,
		Repo: backup.Repo{Path: envOr("BACKUP_REPO_PATH", filepath.Join(d.Config.Data, "backup", "repo")),
			S3Bucket: envOr("BACKUP_S3_BUCKET", ""), S3Endpoint: envOr("BACKUP_S3_ENDPOINT", ""),
			S3Region: envOr("BACKUP_S3_REGION", ""), S3URIStyle: envOr("BACKUP_S3_URI_STYLE", "")}}
	if srv.Repo.S3() && os.Getenv("BACKUP_REPO_PATH") == "" {
		srv.Repo.Path = "/orderflow"
	}
	if v := envOr("BACKUP_RETENTION_DAYS", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return srv, false, fmt.Errorf("BACKUP_RETENTION_DAYS=%q: want a number of days, at least 1", v)
		}
		srv.RetentionDays = n
	}
	private := env["LAB_POSTGRES"] == "private"
	if private {
		srv.PGData, srv.PGSocket = filepath.Join(d.Config.Data, "postgres", "data"), filepath.Join(d.Config.Data, "postgres", "sock")
		return srv, true, nil
	}
	bin, err := lab.PostgresBin()
	if err != nil {
		return srv, false, err
	}
	ver := filepath.Base(filepath.Dir(bin))
	srv.PGData, srv.PGSocket = "/var/lib/postgresql/"+ver+"/main", "/var/run/postgresql"
	return srv, false, nil
}

// runBackup backs up a lab stack's PostgreSQL (make backup): it writes
// pgbackrest.conf, turns WAL archiving on when it is off, creates the
// stanza, takes the backup and writes the age metric. On the ha profile
// Patroni's members archive from the start: the backup is taken from the
// primary, whichever member it is.
func runBackup(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	data := fs.String("data", envOr("STACK_DATA_DIR", ".data"), "the lab stack whose PostgreSQL is backed up (its directory)")
	profile := fs.String("profile", "", "the lab profile whose stack it is (ha: .data/ha-profile), unless --data names one")
	typ := fs.String("type", "auto", "full, incr, diff, or auto (full when the last full is 7 days old, else incr)")
	metric := fs.String("metric-file", "", "the Prometheus textfile to write (default <data>/backup/metrics/orderflow_backup.prom)")
	// The environment first (DRILL_BATCH, BACKUP_TYPE...), the command line over it.
	if err := flagsFromEnv(fs, "BACKUP_"); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := profileData(fs, *profile, data); err != nil {
		return err
	}
	if p, ok, err := haProfile(*data); ok || err != nil {
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		return backupHA(ctx, p, *typ, *metric)
	}
	d, srv, private, err := stackServer(*data)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := srv.Write(); err != nil {
		return err
	}
	restart, err := backup.EnableArchiving(ctx, srv, private)
	if err != nil {
		return err
	}
	if restart {
		if !d.State("postgres").Started {
			return fmt.Errorf("backup: archive_mode is now on in PostgreSQL's configuration, which takes a restart; " +
				"the lab did not start this server (a shared one): restart it where it runs (pg_ctlcluster <version> main restart) and run make backup again")
		}
		fmt.Println("backup: restarting PostgreSQL to turn WAL archiving on")
		if err := d.Restart(ctx, "postgres"); err != nil {
			return err
		}
	}
	if err := srv.CreateStanza(ctx); err != nil {
		return err
	}
	info, err := srv.Backup(ctx, *typ)
	if err != nil {
		return err
	}
	return backedUp(ctx, srv, info, *metric, filepath.Join(srv.Dir, "metrics", "orderflow_backup.prom"))
}

// backupHA backs the ha profile's Patroni cluster up from its primary.
func backupHA(ctx context.Context, p *ha.Profile, typ, metric string) error {
	if err := p.Postgres.CreateStanza(ctx); err != nil {
		return err
	}
	info, err := p.Postgres.Backup(ctx, typ)
	if err != nil {
		return err
	}
	srv, err := p.Postgres.BackupServer(0)
	if err != nil {
		return err
	}
	return backedUp(ctx, srv, info, metric, filepath.Join(p.Config.Data, "backup", "metrics", "orderflow_backup.prom"))
}

// backedUp reports a backup taken and writes the metric from what the
// repository srv reads lists (to def unless metric names a file).
func backedUp(ctx context.Context, srv backup.Server, info backup.Info, metric, def string) error {
	fmt.Printf("backup: %s backup %s, %s to %s, %d MB (%d MB in %s)\n", info.Type, info.Label, info.Start.Format(time.RFC3339),
		info.Stop.Format(time.RFC3339), info.Size>>20, info.RepoSize>>20, srv.Repo.Path)
	infos, err := srv.Info(ctx)
	if err != nil {
		return err
	}
	if metric == "" {
		metric = def
	}
	return backup.WriteMetric(metric, infos)
}

// runRestore restores a lab stack's PostgreSQL to a point in time (make
// restore TARGET_TIME=...): the stack stopped, the data directory kept
// aside, the backup restored into a fresh one, PostgreSQL replaying the
// archive to the target and promoting, the stack started on it. On the ha
// profile the same through Patroni (ha.Profile.Restore).
func runRestore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	data := fs.String("data", envOr("STACK_DATA_DIR", ".data"), "the lab stack whose PostgreSQL is restored (its directory)")
	profile := fs.String("profile", "", "the lab profile whose stack it is (ha: .data/ha-profile), unless --data names one")
	target := fs.String("target-time", "", `the time to restore to (RFC 3339, "2026-12-07T03:50:19Z"), or "latest": the end of the archive`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var t backup.Target
	switch *target {
	case "":
		return errors.New(`restore: --target-time (TARGET_TIME) is required: an RFC 3339 time, or "latest"`)
	case "latest":
	default:
		tt, err := time.Parse(time.RFC3339Nano, *target)
		if err != nil {
			return fmt.Errorf("restore: --target-time %q: want RFC 3339 (2026-12-07T03:50:19Z) or latest", *target)
		}
		t.Time = tt
	}
	if err := profileData(fs, *profile, data); err != nil {
		return err
	}
	if p, ok, err := haProfile(*data); ok || err != nil {
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		r, err := p.Restore(ctx, t)
		if err != nil {
			return err
		}
		fmt.Printf("restore: %s restored to %s is the leader (timeline %d) after %.1fs; %s rebuilt by %s in %.1fs; the stack serving %.1fs later; "+
			"the old data directories: %s (delete them once satisfied), take a new full backup: make backup TOPOLOGY=ha BACKUP_TYPE=full\n",
			r.Leader, t, r.Timeline, r.LeaderSeconds, ha.MemberName(1), r.ReplicaMethod, r.ReplicaSeconds, r.StackSeconds, strings.Join(r.Aside, ", "))
		return nil
	}
	d, srv, private, err := stackServer(*data)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if !private {
		return errors.New("restore: this stack's PostgreSQL is the machine's shared cluster, which the lab never stops: " +
			"restore it where it runs with pgbackrest restore (docs/operations.md, Restore), or run the stack with a private cluster")
	}
	// What the running server wrote last is still in its current WAL
	// segment: a switch sends it to the repository, so a target up to now
	// can be reached (best effort: the server may be the thing that is lost).
	if err := srv.Check(ctx); err != nil {
		fmt.Printf("restore: the running server's last WAL not archived (%v); restoring from what the repository holds\n", err)
	}
	fmt.Println("restore: stopping the stack")
	if err := d.Down(); err != nil {
		return err
	}
	aside := srv.PGData + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(srv.PGData, aside); err != nil && !os.IsNotExist(err) {
		return err
	}
	fmt.Printf("restore: the data directory kept as %s; restoring to %s\n", aside, t)
	start := time.Now()
	if err := srv.Restore(ctx, srv.PGData, t); err != nil {
		return err
	}
	if err := d.Start(ctx, "postgres"); err != nil {
		return err
	}
	if err := drill.Promoted(ctx, d.Config.Env["DATABASE_URL"]); err != nil {
		return err
	}
	fmt.Printf("restore: PostgreSQL serves the restored data after %.1fs; starting the stack\n", time.Since(start).Seconds())
	// A lab stack's Temporal is the dev server, on SQLite: production's
	// Temporal keeps its state in the restored PostgreSQL (the drill).
	fmt.Println("restore: note: the stack's Temporal dev server keeps its state in temporal.db (SQLite), which this does not roll back")
	return d.Up(ctx)
}
