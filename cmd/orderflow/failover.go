package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/regions"
	"github.com/orderflow/orderflow/internal/temporal"
	"github.com/orderflow/orderflow/internal/tlsconf"
)

const failoverUsage = `usage: orderflow failover --region LOST [--watch] [--out FILE]
       orderflow failover --failback --region HOME [--out FILE]

Run in the region that survives, with the environment of its standby set for
the lost region (docs/regions.md, docs/operations.md):
  1. drop_sync_standby   the lost region's standby leaves this region's
                         synchronous_standby_names (FAILOVER_PRIMARY_DATABASE_URL):
                         acceptance records waiting for it commit
  2. promote_standby     the lost region's database standby here is promoted
                         (FAILOVER_STANDBY_DATABASE_URL)
  3. activate_namespace  the namespace orders-LOST becomes active in
                         this cluster (TEMPORAL_ADDRESS), forced: the standby
                         set's workers start polling it
  4. redrive             sagas accepted in the last FAILOVER_REDRIVE_WINDOW
                         that did not replicate are started (orderflow redrive)
Each step is idempotent: run it again after a failover that stopped half way.
--watch polls FAILOVER_WATCH_URL every FAILOVER_WATCH_INTERVAL and fails over
after 3 failed polls within 3 intervals. --failback, run in the surviving region
once the home region is back (its database a standby again), hands the
namespace back gracefully and requires the home region's standby again.
The record of the steps, each with its time, is printed as JSON (and written
to --out).
`

// failoverRecord is what `orderflow failover` did, step by step.
type failoverRecord struct {
	Kind      string         `json:"kind"` // failover or failback
	Region    string         `json:"region"`
	Namespace string         `json:"namespace"`
	Cluster   string         `json:"cluster"`
	StartedAt time.Time      `json:"started_at"`
	Detection *detection     `json:"detection,omitempty"`
	Steps     []failoverStep `json:"steps"`
	TotalMS   int64          `json:"total_ms"`
	OK        bool           `json:"ok"`
}

// detection is how --watch saw the region fail.
type detection struct {
	FirstFailure time.Time `json:"first_failure"`
	DetectedAt   time.Time `json:"detected_at"`
	Failures     []string  `json:"failures"`
}

// failoverStep is one step: when it ran, how long it took, whether it
// changed anything (a re-run finds the earlier run's work done) and what.
type failoverStep struct {
	Name      string    `json:"name"`
	StartedAt time.Time `json:"started_at"`
	MS        int64     `json:"ms"`
	Changed   bool      `json:"changed"`
	Detail    any       `json:"detail,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// step runs fn as the step called name and records it; it returns fn's
// error.
func (r *failoverRecord) step(name string, fn func() (bool, any, error)) error {
	s := failoverStep{Name: name, StartedAt: time.Now().UTC()}
	changed, detail, err := fn()
	s.MS, s.Changed, s.Detail = time.Since(s.StartedAt).Milliseconds(), changed, detail
	if err != nil {
		s.Error = err.Error()
	}
	r.Steps = append(r.Steps, s)
	return err
}

// runFailover is `orderflow failover`.
func runFailover(ctx context.Context, out io.Writer, lookup env, args []string) error {
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	lost := fs.String("region", "", "")
	watch := fs.Bool("watch", false, "")
	failback := fs.Bool("failback", false, "")
	outFile := fs.String("out", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || *lost == "" || (*watch && *failback) {
		return fmt.Errorf("failover: bad arguments %q\n%s", args, failoverUsage)
	}
	cfg, v := loadFailover(lookup)
	if err := v.Err(); err != nil {
		return err
	}
	if len(cfg.Regions) > 0 && !slices.Contains(cfg.Regions, *lost) {
		return fmt.Errorf("failover: --region %q is not one of ORDERFLOW_REGIONS (%v)", *lost, cfg.Regions)
	}
	need := map[string]string{"FAILOVER_PRIMARY_DATABASE_URL": cfg.PrimaryDSN, "FAILOVER_STANDBY_DATABASE_URL": cfg.StandbyDSN}
	if *watch {
		need["FAILOVER_WATCH_URL"] = cfg.WatchURL
	}
	for name, val := range need {
		if val == "" {
			return fmt.Errorf("failover: %s is not set\n%s", name, failoverUsage)
		}
	}
	// The lost region's namespace (docs/regions.md); the re-drive reads the
	// lost region's database (DATABASE_URL) and starts sagas there.
	cfg.Boot.Temporal.Namespace = namespaceOf(*lost)
	log, err := boot.Logger(cfg.Boot, "failover")
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // stderr
	nc, err := namespaceClient(cfg.Boot)
	if err != nil {
		return err
	}
	defer nc.Close()
	rec := &failoverRecord{Kind: "failover", Region: *lost, Namespace: cfg.Boot.Temporal.Namespace}
	if *watch {
		if rec.Detection, err = watchRegion(ctx, cfg.WatchURL, cfg.WatchInterval, log); err != nil {
			return err
		}
	}
	rec.StartedAt = time.Now().UTC()
	if *failback {
		rec.Kind = "failback"
		err = failBack(ctx, cfg, nc, rec)
	} else {
		err = failOver(ctx, cfg, nc, rec, log)
	}
	rec.TotalMS, rec.OK = time.Since(rec.StartedAt).Milliseconds(), err == nil
	if werr := writeRecord(out, *outFile, rec); werr != nil && err == nil {
		err = werr
	}
	return err
}

// namespaceOf is the global namespace whose home is region r.
func namespaceOf(r string) string { return "orders-" + r }

// failOver runs the failover's steps in order, stopping at the first that
// fails (each is idempotent: a re-run picks up there).
func failOver(ctx context.Context, cfg failoverConfig, nc client.NamespaceClient, rec *failoverRecord, log *zap.Logger) error {
	err := rec.step("drop_sync_standby", func() (bool, any, error) {
		list, err := regions.DropSyncStandby(ctx, cfg.PrimaryDSN, rec.Region)
		return err == nil, map[string]string{"synchronous_standby_names": list}, err
	})
	if err == nil {
		err = rec.step("promote_standby", func() (bool, any, error) {
			promoted, err := regions.Promote(ctx, cfg.StandbyDSN)
			return promoted, nil, err
		})
	}
	if err == nil {
		err = rec.step("activate_namespace", func() (bool, any, error) {
			cluster, err := localCluster(ctx, cfg.Boot)
			if err != nil {
				return false, nil, err
			}
			rec.Cluster = cluster
			changed, err := regions.SwitchActive(ctx, nc, rec.Namespace, cluster)
			return changed, nil, err
		})
	}
	if err == nil {
		err = rec.step("redrive", func() (bool, any, error) {
			r, err := openRegion(ctx, cfg.Boot, log)
			if err != nil {
				return false, nil, err
			}
			defer r.close()
			rep, err := r.redrive(ctx, rec.StartedAt.Add(-cfg.RedriveWindow), log)
			return len(rep.Started) > 0, rep, err
		})
	}
	return err
}

// failBack hands the namespace back to the home region's cluster once it
// is back, with Temporal's graceful handover (regions.HandOver: writes stop
// in this cluster, replication catches up, then the home cluster is
// active; no saga runs in two places and nothing is left behind), after
// requiring the home region's standbys again for acceptance records. Run in the region that took over, against its
// cluster (the namespace's active one).
func failBack(ctx context.Context, cfg failoverConfig, nc client.NamespaceClient, rec *failoverRecord) error {
	home, err := homeCluster(ctx, nc, rec.Namespace, cfg.Boot)
	if err != nil {
		return err
	}
	rec.Cluster = home
	// Both databases this region serves stream to the home region again:
	// its own and the home region's (promoted here); acceptance records of
	// both wait for the home region once more.
	for _, db := range []struct{ step, dsn string }{{"require_sync_standby", cfg.PrimaryDSN}, {"require_sync_standby_home", cfg.StandbyDSN}} {
		if err = rec.step(db.step, func() (bool, any, error) {
			list, err := regions.RequireSyncStandby(ctx, db.dsn, rec.Region)
			return err == nil, map[string]string{"synchronous_standby_names": list}, err
		}); err != nil {
			return err
		}
	}
	return rec.step("handover_namespace", func() (bool, any, error) {
		sys, err := systemClient(cfg.Boot)
		if err != nil {
			return false, nil, err
		}
		defer sys.Close()
		changed, err := regions.HandOver(ctx, sys, nc, rec.Namespace, home, handoverTimeout)
		return changed, nil, err
	})
}

// homeCluster is the namespace's other cluster: the one it is handed back
// to.
func homeCluster(ctx context.Context, nc client.NamespaceClient, ns string, c boot.Config) (string, error) {
	local, err := localCluster(ctx, c)
	if err != nil {
		return "", err
	}
	d, err := nc.Describe(ctx, ns)
	if err != nil {
		return "", fmt.Errorf("describe %s: %w", ns, err)
	}
	for _, cl := range d.GetReplicationConfig().GetClusters() {
		if cl.GetClusterName() != local {
			return cl.GetClusterName(), nil
		}
	}
	return "", fmt.Errorf("failback: %s is replicated to no other cluster than %s", ns, local)
}

// handoverTimeout bounds the graceful handover of a failback.
const handoverTimeout = 2 * time.Minute

// systemClient is a client of the local cluster's temporal-system
// namespace with the SDK's own data converter: the server's handover
// workflow reads its input as plain JSON (regions.HandOver).
func systemClient(c boot.Config) (client.Client, error) {
	tlsCfg, err := tlsconf.Client(c.Temporal.TLS)
	if err != nil {
		return nil, err
	}
	sys, err := client.Dial(client.Options{HostPort: c.Temporal.Address, Namespace: regions.SystemNamespace,
		ConnectionOptions: client.ConnectionOptions{TLS: tlsCfg}})
	if err != nil {
		return nil, fmt.Errorf("dial temporal %s: %w", c.Temporal.Address, err)
	}
	return sys, nil
}

// namespaceClient is a namespace client on the local cluster.
func namespaceClient(c boot.Config) (client.NamespaceClient, error) {
	tlsCfg, err := tlsconf.Client(c.Temporal.TLS)
	if err != nil {
		return nil, err
	}
	nc, err := client.NewNamespaceClient(client.Options{HostPort: c.Temporal.Address, ConnectionOptions: client.ConnectionOptions{TLS: tlsCfg}})
	if err != nil {
		return nil, fmt.Errorf("dial temporal %s: %w", c.Temporal.Address, err)
	}
	return nc, nil
}

// localCluster is the name of the cluster at TEMPORAL_ADDRESS.
func localCluster(ctx context.Context, c boot.Config) (string, error) {
	r, err := temporal.Dial(c.Temporal, temporal.Options{})
	if err != nil {
		return "", err
	}
	defer r.Close()
	info, err := r.WorkflowService().GetClusterInfo(ctx, &workflowservice.GetClusterInfoRequest{})
	if err != nil {
		return "", fmt.Errorf("cluster info: %w", err)
	}
	return info.GetClusterName(), nil
}

// watchFailures and the window they must fall in: the design's "3 failed
// health checks in 15 s" at the default 5 s interval.
const watchFailures = 3

// watchRegion polls url every interval until watchFailures polls failed
// within watchFailures intervals, and says when and how it saw that.
func watchRegion(ctx context.Context, url string, interval time.Duration, log *zap.Logger) (*detection, error) {
	hc := &http.Client{Timeout: interval}
	var failed []time.Time
	var why []string
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := probe(ctx, hc, url); err != nil {
			now := time.Now().UTC()
			failed, why = append(failed, now), append(why, now.Format(time.RFC3339Nano)+" "+err.Error())
			window := time.Duration(watchFailures) * interval
			for len(failed) > 0 && now.Sub(failed[0]) > window {
				failed, why = failed[1:], why[1:]
			}
			log.Warn("region health check failed", zap.String("url", url), zap.Int("failures_in_window", len(failed)), zap.Error(err))
			if len(failed) >= watchFailures {
				return &detection{FirstFailure: failed[0], DetectedAt: now, Failures: why}, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// probe is one health check: a 2xx within the client's timeout.
func probe(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// writeRecord prints the record and writes it to file when one is named.
func writeRecord(out io.Writer, file string, rec *failoverRecord) error {
	if err := writeJSON(out, rec); err != nil {
		return err
	}
	if file == "" {
		return nil
	}
	f, err := os.Create(file) // #nosec G304 -- the operator's own --out
	if err != nil {
		return err
	}
	if err := writeJSON(f, rec); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
