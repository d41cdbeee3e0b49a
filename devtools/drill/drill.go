// Package drill is the region-loss drill (`make drill`, issue 14): on the
// lab's regions profile, orders to both regions at a steady rate through
// the global entry point, one region cut off entirely, `orderflow failover
// --watch` in the other region failing it over, then the region restored
// and failed back gracefully; it measures detection, failover, RTO and
// failback, and checks the chaos run's invariants in both regions
// (devtools/chaos: its load, its checks, its report).
package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/devtools/chaos"
	"github.com/orderflow/orderflow/devtools/lab"
	"github.com/orderflow/orderflow/devtools/regions"
	"github.com/orderflow/orderflow/internal/auth"
	regionsx "github.com/orderflow/orderflow/internal/regions"
)

// Config is one drill.
type Config struct {
	// Lost is the region cut off (east); the other one survives.
	Lost string
	// Rate is the orders placed per second to each region.
	Rate float64
	// Before is the load before the cut; Hold how long the region stays
	// lost at least once the failover is done (its customers served by the
	// survivor); After the load once the failback is done.
	Before, Hold, After time.Duration
	// Quiesce bounds the wait for every accepted order to end after load.
	Quiesce time.Duration
	// Bound is how long each phase (failover, recovery, failback) may take
	// before the drill gives up on it.
	Bound      time.Duration
	ResultsDir string
	Seed       uint64
	// Bin is the orderflow binary (`orderflow failover`).
	Bin    string
	Tokens *auth.Minter
}

func (c *Config) defaults() {
	if c.Lost == "" {
		c.Lost = regions.Names[0]
	}
	if c.Rate == 0 {
		c.Rate = 3
	}
	if c.Before == 0 {
		c.Before = 15 * time.Second
	}
	if c.Hold == 0 {
		c.Hold = 10 * time.Second
	}
	if c.After == 0 {
		c.After = 10 * time.Second
	}
	if c.Quiesce == 0 {
		c.Quiesce = 3 * time.Minute
	}
	if c.Bound == 0 {
		c.Bound = 3 * time.Minute
	}
}

// failoverRetries bounds the runs of `orderflow failover` after the
// watcher's when it did not finish.
const failoverRetries = 3

// Objectives of the drill (issue 14): RTO under a minute, 30 s the goal.
const (
	RTOObjective = 60 * time.Second
	RTOGoal      = 30 * time.Second
)

// region is one home region's customers, their load and their checks.
type region struct {
	name      string
	customers *customers
	runner    *chaos.Runner
	db        *pgxpool.Pool
	temporal  client.Client
	catalog   chaos.Catalog
}

// Drill runs on a regions profile.
type Drill struct {
	cfg     Config
	p       *regions.Profile
	out     io.Writer
	ledger  *pgxpool.Pool
	regions []*region
}

// New prepares a drill on the regions profile p; Close releases its
// clients.
func New(ctx context.Context, cfg Config, p *regions.Profile, out io.Writer) (*Drill, error) {
	cfg.defaults()
	d := &Drill{cfg: cfg, p: p, out: out}
	var err error
	if d.ledger, err = pgxpool.New(ctx, p.ProviderDatabaseURL()); err != nil {
		return nil, fmt.Errorf("drill: the providers' ledger: %w", err)
	}
	survivor := regions.Other(cfg.Lost)
	for i, name := range regions.Names {
		r := &region{name: name, customers: &customers{region: name, next: http.DefaultTransport}}
		d.regions = append(d.regions, r)
		// The region's database wherever it is writable: its primary, or
		// after a failover its promoted copy in the other region.
		if r.db, err = pgxpool.New(ctx, p.HomeDatabaseURL(regions.Other(name), name)); err != nil {
			d.Close()
			return nil, err
		}
		// The survivor's frontend answers for both namespaces (forwarding
		// to the active cluster), whichever region is lost.
		if r.temporal, err = client.Dial(client.Options{HostPort: p.TemporalAddress(survivor), Namespace: regions.Namespace(name)}); err != nil {
			d.Close()
			return nil, err
		}
		seed := cfg.Seed
		if seed != 0 {
			seed += uint64(i)
		}
		c := chaos.Config{APIURL: p.APIURL(), Rate: cfg.Rate, Quiesce: cfg.Quiesce, Tokens: cfg.Tokens, Seed: seed,
			Transport: r.customers, Ledger: d.ledger}
		r.runner = chaos.New(c, r.db, r.temporal, io.Discard)
	}
	return d, nil
}

// Close releases the drill's clients.
func (d *Drill) Close() {
	for _, r := range d.regions {
		if r.db != nil {
			r.db.Close()
		}
		if r.temporal != nil {
			r.temporal.Close()
		}
	}
	d.ledger.Close()
}

func (d *Drill) region(name string) *region {
	for _, r := range d.regions {
		if r.name == name {
			return r
		}
	}
	return nil
}

func (d *Drill) logf(format string, args ...any) {
	fmt.Fprintf(d.out, "drill: [%s] "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05.0")}, args...)...)
}

// Run is the drill: load, the cut, the failover, the failback, the checks.
// Whatever happens, the lost region is healed before it returns.
func (d *Drill) Run(ctx context.Context) (*Report, error) {
	lost, survivor := d.cfg.Lost, regions.Other(d.cfg.Lost)
	rep := &Report{Started: time.Now().UTC(), Lost: lost, Survivor: survivor, Rate: d.cfg.Rate, Seed: d.cfg.Seed}
	for _, r := range d.regions {
		var err error
		if r.catalog, err = r.runner.Prepare(ctx); err != nil {
			return rep, fmt.Errorf("catalog of %s: %w", r.name, err)
		}
	}
	rep.Lag = d.lag(ctx)
	d.logf("%.0f orders/s to each region; %s cut after %s", d.cfg.Rate, lost, d.cfg.Before)

	// The watcher runs in the survivor, as an operator leaves it.
	watch, err := d.failover(ctx, "failover", "--watch")
	if err != nil {
		return rep, err
	}
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var loads sync.WaitGroup
	for _, r := range d.regions {
		loads.Add(1)
		go func() { defer loads.Done(); r.runner.Load(lctx, r.catalog) }()
	}
	sleep(ctx, d.cfg.Before)

	healed := false
	defer func() {
		if !healed {
			_ = d.p.Heal(context.Background(), lost)
		}
	}()
	inFlight := d.region(lost).runner.AcceptedIDs()
	rep.CutAt = time.Now().UTC()
	if err := d.p.Cut(ctx, lost); err != nil {
		return rep, fmt.Errorf("cut %s: %w", lost, err)
	}
	d.logf("%s cut off (every host); %d of its orders accepted before", lost, len(inFlight))
	rep.InFlightAtCut = len(inFlight)
	// The sagas in flight are watched from the cut on, beside the failover.
	ended := make(chan time.Time, 1)
	go func() {
		at, ok := d.awaitEnded(ctx, lost, inFlight)
		if !ok {
			at = time.Time{}
		}
		ended <- at
	}()

	rec, werr := watch.wait(d.cfg.Bound + d.cfg.Before)
	rep.Failover = rec
	if rec.Detection == nil {
		return rep, fmt.Errorf("orderflow failover --watch: %w", werr)
	}
	rep.DetectionSec = seconds(rec.Detection.DetectedAt.Sub(rep.CutAt))
	d.logf("failover: detected %.1f s after the cut, steps done %.1f s after it (%s)", deref(rep.DetectionSec),
		rec.end().Sub(rep.CutAt).Seconds(), rec.steps())
	// A failover that stopped half way (a step failed: a saga the re-drive
	// could not reach yet) is finished by running it again, as the runbook
	// says; each step is idempotent.
	for try := 0; werr != nil && try < failoverRetries; try++ {
		d.logf("failover not finished (%v); running it again", werr)
		sleep(ctx, 5*time.Second)
		again, err := d.failover(ctx, fmt.Sprintf("failover-again-%d", try+1))
		if err != nil {
			return rep, err
		}
		rec, werr = again.wait(d.cfg.Bound)
		rep.FailoverAgain = append(rep.FailoverAgain, rec)
		d.logf("failover run again: %s", rec.steps())
	}
	if werr == nil {
		rep.FailoverSec = seconds(rec.end().Sub(rep.CutAt))
	}

	since := rep.CutAt
	if f, ok := firstFailed(d.region(lost).customers.snapshot(), rep.CutAt); ok {
		since = f
	}
	if at, ok := d.awaitAccepted(ctx, lost, since); ok {
		rep.RTOAcceptSec = seconds(at.Sub(rep.CutAt))
		d.logf("first %s customer's order accepted again %.1f s after the cut", lost, deref(rep.RTOAcceptSec))
	}
	if at := <-ended; !at.IsZero() {
		rep.RTOSagasSec = seconds(at.Sub(rep.CutAt))
		d.logf("every %s saga in flight at the cut ended %.1f s after it", lost, deref(rep.RTOSagasSec))
	}
	sleep(ctx, time.Until(rec.end().Add(d.cfg.Hold)))
	for _, r := range d.regions {
		rep.Outage = append(rep.Outage, RegionRefusals{Region: r.name, Refusals: refusals(r.customers.snapshot(), rep.CutAt, time.Now())})
	}

	healed = true
	err = d.failBack(ctx, rep)
	for _, r := range d.regions {
		rep.Failback.Placements = append(rep.Failback.Placements, RegionRefusals{Region: r.name,
			Refusals: refusals(r.customers.snapshot(), rep.Failback.HealedAt, time.Now())})
	}
	if err != nil {
		return rep, err
	}
	sleep(ctx, d.cfg.After)
	stopLoad()
	loads.Wait()
	d.logf("load stopped; waiting up to %s for every order to end", d.cfg.Quiesce)
	return rep, d.check(ctx, rep)
}

// failBack restores the lost region and fails back: the lost region's
// processes that could act as active (its gateway, its worker, its old
// primary, a writable primary of a timeline the failover left) are
// stopped while it is still cut off, so nothing in it acts before it is
// rebuilt; then its links come up, its primary is rebuilt as the standby
// of its promoted copy, `orderflow failover --failback` hands its
// namespace back gracefully, and its gateway and worker start again.
func (d *Drill) failBack(ctx context.Context, rep *Report) error {
	lost := d.cfg.Lost
	fb := &Failback{}
	rep.Failback = fb
	fence := []string{regions.Host(lost, regions.RoleGateway), regions.Host(lost, regions.RoleWorker), regions.Host(lost, regions.RolePostgres)}
	for _, n := range fence {
		if err := d.p.Stop(n); err != nil {
			return fmt.Errorf("fence %s: %w", n, err)
		}
	}
	fb.Fenced = fence
	fb.HealedAt = time.Now().UTC()
	if err := d.p.Heal(ctx, lost); err != nil {
		return fmt.Errorf("heal %s: %w", lost, err)
	}
	d.logf("%s healed, %v stopped before", lost, fence)
	nc, err := client.NewNamespaceClient(client.Options{HostPort: d.p.TemporalAddress(lost)})
	if err != nil {
		return err
	}
	defer nc.Close()
	survivor := regions.Other(lost)
	heard := check("the "+lost+" cluster knows "+regions.Namespace(lost)+" is active in "+survivor, func(ctx context.Context) error {
		got, err := regionsx.ActiveCluster(ctx, nc, regions.Namespace(lost))
		if err == nil && got != survivor {
			err = errors.New("active in " + got)
		}
		return err
	})
	if err := lab.Wait(ctx, heard, d.cfg.Bound, nil); err != nil {
		return err
	}
	fb.HeardSec = seconds(time.Since(fb.HealedAt))
	step := time.Now()
	if err := d.p.RebuildAsStandby(ctx, lost); err != nil {
		return fmt.Errorf("rebuild %s's primary as a standby: %w", lost, err)
	}
	fb.RebuildSec = seconds(time.Since(step))
	fb.OldPrimaryInRecovery, err = regions.InRecovery(ctx, d.p.PrimaryAdminURL(lost, "postgres"))
	if err != nil {
		return err
	}
	// The rebuilt standby must stream before it can be required.
	streams := check(lost+" streams from its promoted copy", func(ctx context.Context) error {
		state, err := regionsx.SyncState(ctx, d.p.StandbyURL(survivor, "postgres"), lost)
		if err == nil && state == "" {
			err = errors.New("not streaming")
		}
		return err
	})
	if err := lab.Wait(ctx, streams, d.cfg.Bound, nil); err != nil {
		return err
	}
	cmd, err := d.failover(ctx, "failback", "--failback")
	if err != nil {
		return err
	}
	if fb.Record, err = cmd.wait(d.cfg.Bound); err != nil {
		return fmt.Errorf("orderflow failover --failback: %w", err)
	}
	d.logf("failed back: %s", fb.Record.steps())
	for _, n := range []string{regions.Host(lost, regions.RoleWorker), regions.Host(lost, regions.RoleGateway)} {
		if err := d.p.Start(ctx, n); err != nil {
			return fmt.Errorf("start %s: %w", n, err)
		}
	}
	home := regions.Backends(lost)[0]
	back := check(lost+"'s customers served by "+home, func(ctx context.Context) error {
		got, err := d.p.ServedBy(ctx, lost)
		if err == nil && got != home {
			err = errors.New("served by " + got)
		}
		return err
	})
	if err := lab.Wait(ctx, back, d.cfg.Bound, nil); err != nil {
		return err
	}
	fb.ServedAgainSec = seconds(time.Since(fb.HealedAt))
	d.logf("%s's customers served by %s again %.1f s after the heal", lost, home, deref(fb.ServedAgainSec))
	return nil
}

// awaitAccepted waits, up to the drill's bound, for a customer of home to
// get an order accepted that was sent after since; it returns when.
func (d *Drill) awaitAccepted(ctx context.Context, home string, since time.Time) (time.Time, bool) {
	for deadline := time.Now().Add(d.cfg.Bound); ctx.Err() == nil && time.Now().Before(deadline); sleep(ctx, 250*time.Millisecond) {
		if at, ok := firstAccepted(d.region(home).customers.snapshot(), since); ok {
			return at, true
		}
	}
	return time.Time{}, false
}

// awaitEnded waits, up to the drill's bound, for every order of ids to
// have settled (ended, or paid and waiting on its carrier) in home's
// database, wherever it is writable; it returns when it saw that.
func (d *Drill) awaitEnded(ctx context.Context, home string, ids []string) (time.Time, bool) {
	db := d.region(home).db
	for deadline := time.Now().Add(d.cfg.Bound); ctx.Err() == nil && time.Now().Before(deadline); sleep(ctx, 500*time.Millisecond) {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		open, err := unsettled(qctx, db, ids)
		cancel()
		if err == nil && open == 0 {
			return time.Now(), true
		}
	}
	return time.Time{}, false
}

const qStatuses = `SELECT status FROM orders WHERE order_id = ANY($1::uuid[])`

// unsettled counts the orders of ids that are missing or not settled.
func unsettled(ctx context.Context, db *pgxpool.Pool, ids []string) (int, error) {
	rows, err := db.Query(ctx, qStatuses, ids)
	if err != nil {
		return 0, err
	}
	statuses, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	open := len(ids) - len(statuses)
	for _, s := range statuses {
		if !orderflow.Settled(s) {
			open++
		}
	}
	return open, nil
}

// failoverCmd is `orderflow failover` running in the survivor.
type failoverCmd struct {
	cmd  *exec.Cmd
	out  string
	done chan error
}

// failover starts `orderflow failover --region LOST args...` on the
// survivor's standby-set host, with that host's environment (the
// standby set's, docs/regions.md), its record written to the results
// directory as name.json and its log beside it.
func (d *Drill) failover(ctx context.Context, name string, args ...string) (*failoverCmd, error) {
	host := regions.Host(regions.Other(d.cfg.Lost), regions.RoleStandbyGateway)
	n, err := d.p.Node(host)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(d.p.Config.Data, "drill")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, name+".json")
	_ = os.Remove(out)
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	argv := append([]string{"--net=" + lab.NetnsPath(n.Netns), "--", d.cfg.Bin, "failover", "--region", d.cfg.Lost, "--out", out}, args...)
	// #nosec G204 -- the lab's own binary and namespace
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	cmd.Env = append(os.Environ(), n.Proc.Env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, err
	}
	f := &failoverCmd{cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { f.done <- cmd.Wait(); _ = log.Close() }()
	return f, nil
}

// wait waits up to bound for the command to end and reads its record.
func (f *failoverCmd) wait(bound time.Duration) (*Record, error) {
	var err error
	select {
	case err = <-f.done:
	case <-time.After(bound):
		_ = f.cmd.Process.Kill()
		<-f.done
		err = fmt.Errorf("still running after %s", bound)
	}
	rec := &Record{}
	b, rerr := os.ReadFile(f.out)
	if rerr == nil {
		rerr = json.Unmarshal(b, rec)
	}
	if err == nil && rerr != nil {
		err = rerr
	}
	if err == nil && !rec.OK {
		err = errors.New("its record says it failed: " + rec.steps())
	}
	return rec, err
}

// check is a lab.Check made of a function.
var check = regions.Check

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func deref(f *float64) float64 {
	if f == nil {
		return -1
	}
	return *f
}

// stepNames lists a record's steps and their times.
func (r *Record) steps() string {
	var parts []string
	for _, s := range r.Steps {
		p := fmt.Sprintf("%s %d ms", s.Name, s.MS)
		if s.Error != "" {
			p += " (" + s.Error + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}
