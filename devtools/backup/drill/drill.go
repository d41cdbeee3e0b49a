// Package drill is the restore drill: a stack whose PostgreSQL holds
// orderflow's data and Temporal's persistence, archived by pgBackRest
// (devtools/backup), taken through orders, backups, the loss of its
// PostgreSQL and a restore to a point in time, then checked. It runs on the
// single-node stack (a private PostgreSQL) or on the ha profile (Patroni,
// devtools/ha).
package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/orderflow/orderflow"
	apiclient "github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/devtools/backup"
	"github.com/orderflow/orderflow/devtools/chaos"
	"github.com/orderflow/orderflow/devtools/ha"
	"github.com/orderflow/orderflow/devtools/lab"
	"github.com/orderflow/orderflow/internal/auth"
)

// Drill is the restore drill. On the single-node stack (the default) its
// PostgreSQL is a private cluster on ports of its own holding orderflow's
// database and Temporal's persistence and visibility (a Temporal server on
// PostgreSQL, the production answer of devtools/ha, not the dev server's
// SQLite). With HA it is the ha profile: Patroni's two members, whose
// Temporal cluster keeps its state beside orderflow's. Either way it places
// orders, backs up, places more, notes a time T, places more, loses
// PostgreSQL (the server, or both members' hosts), restores to T and checks
// the stack started on it; and it measures the RPO of a restore to the end
// of the archive and how long restores take.
type Drill struct {
	Root string // the checkout
	Data string // the drill's files; removed first
	// TemporalPortBase (single-node): 13 ports from it for the Temporal
	// server and its load balancer (devtools/ha); 0: 7400 on a loopback
	// address of the drill's own (Temporal's membership ports must stay
	// under 32768).
	TemporalPortBase int
	// HA runs the drill on the ha profile, its hosts on LAB_NETWORK's
	// network (root only), its balancers on Ports (default "free").
	HA    bool
	Ports string
	// Batch is how many orders each step places (default 8).
	Batch int
	Out   io.Writer

	stack  *lab.Stack
	c      cluster
	stock  map[string]int
	tokens *auth.Minter
	api    string
}

// cluster is the PostgreSQL a drill backs up, loses and restores.
type cluster interface {
	up(ctx context.Context) error
	backup(ctx context.Context, typ string) (backup.Info, error)
	// archived switches to a new WAL segment and waits until the finished
	// one is in the repository.
	archived(ctx context.Context) error
	// lose loses PostgreSQL for good: its hosts gone, the repository not.
	lose(ctx context.Context) error
	// repo is a pgBackRest setup that reads the repository.
	repo() (backup.Server, error)
	// restore restores to rep.Target and brings the stack up on it,
	// recording how long it took and what held.
	restore(ctx context.Context, rep *Report) error
}

// Report is what a drill measured and found.
type Report struct {
	Started time.Time `json:"started"`
	// Topology is "single" or "ha".
	Topology string `json:"topology"`
	// Accepted counts the orders acknowledged (2xx) in each step: before the
	// full backup, between it and the incremental one, parked (their sagas
	// open) before T, after T and archived, after T at the moment of loss.
	Accepted map[string]int `json:"orders_accepted"`
	Backups  []backup.Info  `json:"backups"`
	// BackupSeconds is how long each backup took, by type.
	BackupSeconds map[string]float64 `json:"backup_seconds"`
	Target        time.Time          `json:"target_time"`
	// RPOSeconds is how much acknowledged data a restore to the end of the
	// archive lost: from the last order acknowledged before the loss back
	// to the last one the restore holds (0 when it holds them all).
	RPOSeconds float64 `json:"rpo_seconds"`
	LostOrders int     `json:"orders_lost_at_latest"`
	// Restore times: pgBackRest's restore plus PostgreSQL's recovery until
	// it accepts sessions; then the whole stack serving on it.
	RestoreLatestSeconds float64 `json:"restore_latest_seconds"`
	RestoreTargetSeconds float64 `json:"restore_to_target_seconds"`
	StackUpSeconds       float64 `json:"stack_up_on_restore_seconds"`
	// Patroni is what the restore through Patroni did (HA).
	Patroni    *ha.PatroniRestore `json:"patroni,omitempty"`
	Invariants []chaos.Invariant  `json:"invariants"`
	Passed     bool               `json:"passed"`
}

// acked is one acknowledged order and when its 2xx came back.
type acked struct {
	id string
	at time.Time
}

func (d *Drill) logf(format string, args ...any) {
	fmt.Fprintf(d.Out, "drill: "+format+"\n", args...)
}

// Run runs the drill. The stack is down and its processes stopped when it
// returns, whatever happened; the report says what held.
func (d *Drill) Run(ctx context.Context) (rep Report, err error) {
	if d.Batch == 0 {
		d.Batch = 8
	}
	if d.Out == nil {
		d.Out = os.Stdout
	}
	rep = Report{Started: time.Now().UTC(), Topology: "single", Accepted: map[string]int{}, BackupSeconds: map[string]float64{}}
	build := d.buildSingle
	if d.HA {
		rep.Topology, build = "ha", d.buildHA
	}
	if err := build(ctx); err != nil {
		return rep, err
	}
	defer func() {
		if derr := d.stack.Down(); derr != nil && err == nil {
			err = derr
		}
	}()
	if err := d.c.up(ctx); err != nil {
		return rep, err
	}
	d.tokens, err = auth.NewMinter(auth.Config{HS256Secret: d.stack.Config.Env["AUTH_HS256_SECRET"]})
	if err != nil {
		return rep, err
	}
	pool, tc, err := d.clients(ctx)
	if err != nil {
		return rep, err
	}
	if err := d.catalog(ctx); err != nil {
		pool.Close()
		tc.Close()
		return rep, err
	}
	before, after, err := d.beforeLoss(ctx, pool, &rep)
	pool.Close()
	tc.Close()
	if err != nil {
		return rep, err
	}
	if err := d.measureLatest(ctx, before, after, &rep); err != nil {
		return rep, err
	}
	if err := d.c.restore(ctx, &rep); err != nil {
		return rep, err
	}
	pool, tc, err = d.clients(ctx)
	if err != nil {
		return rep, err
	}
	defer pool.Close()
	defer tc.Close()
	var ids, gone []string
	for _, a := range before {
		ids = append(ids, a.id)
	}
	for _, a := range after {
		gone = append(gone, a.id)
	}
	more, err := d.check(ctx, pool, tc, ids, gone, before[len(before)-rep.Accepted["parked_at_target"]:])
	if err != nil {
		return rep, err
	}
	rep.Invariants = append(rep.Invariants, more...)
	rep.Passed = true
	for _, inv := range rep.Invariants {
		rep.Passed = rep.Passed && inv.Passed
	}
	return rep, nil
}

func (d *Drill) clients(ctx context.Context) (*pgxpool.Pool, client.Client, error) {
	pool, err := pgxpool.New(ctx, d.stack.Config.Env["DATABASE_URL"])
	if err != nil {
		return nil, nil, err
	}
	tc, err := client.Dial(client.Options{HostPort: d.stack.Config.Env["TEMPORAL_ADDRESS"], Logger: quiet{}})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, tc, nil
}

// catalog creates the drill's products with plenty of stock.
func (d *Drill) catalog(ctx context.Context) error {
	gw := d.gateway("drill-operator", auth.RoleOperator)
	run := uuid.NewString()[:6]
	d.stock = map[string]int{}
	for i := range 4 {
		sku := fmt.Sprintf("DRILL-%s-%d", run, i)
		if _, _, err := gw.PutProduct(ctx, sku, apiclient.ProductRequest{Name: "drill " + sku, PriceCents: int64(700 + 100*i), OnHand: 1000}); err != nil {
			return err
		}
		d.stock[sku] = 1000
	}
	return nil
}

func (d *Drill) gateway(sub string, role auth.Role) *apiclient.Client {
	return apiclient.New(d.api, apiclient.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}), apiclient.WithToken(d.tokens.Bearer(sub, role)))
}

// beforeLoss runs the stack up to the loss of its PostgreSQL: orders, a
// full backup, orders, an incremental backup, orders parked by a payment
// outage, T, orders archived, orders not yet archived, then the loss of
// PostgreSQL (cluster.lose: its hosts are gone; the repository is not). It
// returns the orders acknowledged before T and after it.
func (d *Drill) beforeLoss(ctx context.Context, pool *pgxpool.Pool, rep *Report) (before, after []acked, err error) {
	step := func(name string, settle bool) error {
		got, err := d.place(ctx, d.Batch)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rep.Accepted[name] = len(got)
		if settle {
			if err := settled(ctx, pool, got); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		before = append(before, got...)
		return nil
	}
	take := func(typ string) error {
		start := time.Now()
		info, err := d.c.backup(ctx, typ)
		if err != nil {
			return err
		}
		rep.BackupSeconds[typ] = time.Since(start).Seconds()
		rep.Backups = append(rep.Backups, info)
		d.logf("%s backup %s in %.1fs (%d MB, %d MB in the repository)", typ, info.Label, rep.BackupSeconds[typ], info.Size>>20, info.RepoSize>>20)
		return nil
	}
	if err := step("before_full_backup", true); err != nil {
		return nil, nil, err
	}
	if err := take(backup.Full); err != nil {
		return nil, nil, err
	}
	if err := step("before_incr_backup", true); err != nil {
		return nil, nil, err
	}
	if err := take(backup.Incr); err != nil {
		return nil, nil, err
	}
	// Both providers down: these orders are accepted and their sagas wait
	// to charge, open at T.
	if err := d.outage(ctx, true); err != nil {
		return nil, nil, err
	}
	if err := step("parked_at_target", false); err != nil {
		return nil, nil, err
	}
	rep.Target = time.Now().UTC()
	d.logf("T = %s; %d orders acknowledged before it", rep.Target.Format(time.RFC3339Nano), len(before))
	if err := d.outage(ctx, false); err != nil {
		return nil, nil, err
	}
	if after, err = d.place(ctx, d.Batch); err != nil {
		return nil, nil, err
	}
	rep.Accepted["after_target_archived"] = len(after)
	// pgbackrest check switches to a new WAL segment and waits until the
	// finished one is in the repository: everything acknowledged so far is
	// restorable.
	if err := d.c.archived(ctx); err != nil {
		return nil, nil, err
	}
	last, err := d.place(ctx, d.Batch)
	if err != nil {
		return nil, nil, err
	}
	rep.Accepted["after_target_at_loss"] = len(last)
	after = append(after, last...)
	return before, after, d.c.lose(ctx)
}

// place places n orders, two at a time, each re-sent with its key until it
// gets a final answer; it returns those acknowledged, in the order their
// answers came back.
func (d *Drill) place(ctx context.Context, n int) ([]acked, error) {
	var skus []string
	for s := range d.stock {
		skus = append(skus, s)
	}
	sort.Strings(skus)
	var mu sync.Mutex
	var out []acked
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			customer := "drill-" + uuid.NewString()[:8]
			req := apiclient.OrderRequest{Email: "drill@example.com", PaymentToken: "tok_visa",
				Items:           []apiclient.Item{{SKU: skus[i%len(skus)], Quantity: 1 + i%2}},
				ShippingAddress: &apiclient.Address{Name: "Drill Buyer", Line1: "3 Restore Road", City: "Leeds", PostalCode: "LS1 4AP", Country: "GB"}}
			id, err := d.placeOne(ctx, customer, req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out = append(out, acked{id: id, at: time.Now()})
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func (d *Drill) placeOne(ctx context.Context, customer string, req apiclient.OrderRequest) (string, error) {
	gw := d.gateway(customer, auth.RoleCustomer)
	key := "drill-" + uuid.NewString()
	var last error
	for range 30 {
		acc, status, err := gw.PlaceOrder(ctx, req, key)
		if err == nil {
			return acc.OrderID, nil
		}
		if status/100 == 4 && status != http.StatusTooManyRequests {
			return "", err
		}
		last = err
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return "", last
}

// outage puts both payment providers down, or up again.
func (d *Drill) outage(ctx context.Context, down bool) error {
	body := fmt.Sprintf(`{"outage":%t}`, down)
	for _, name := range []string{"paysim-a", "paysim-b"} {
		u := fmt.Sprintf("http://%s/admin/faults", net.JoinHostPort(lab.Loopback, strconv.Itoa(d.stack.Config.Ports[name])))
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, strings.NewReader(body))
		if err != nil {
			return err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("%s faults: %w", name, err)
		}
		_ = res.Body.Close()
		if res.StatusCode/100 != 2 {
			return fmt.Errorf("%s faults: status %d", name, res.StatusCode)
		}
	}
	return nil
}

// settled waits, up to three minutes, until every order has a settled
// status.
func settled(ctx context.Context, pool *pgxpool.Pool, orders []acked) error {
	ids := make([]string, len(orders))
	for i, a := range orders {
		ids[i] = a.id
	}
	return lab.Wait(ctx, checkFunc{fmt.Sprintf("%d orders settled", len(ids)), func(ctx context.Context) error {
		var open int
		err := pool.QueryRow(ctx, `SELECT $2::int - count(*) FILTER (WHERE status = ANY($3)) FROM orders WHERE order_id = ANY($1::uuid[])`,
			ids, len(ids), settledStatuses()).Scan(&open)
		if err == nil && open > 0 {
			err = fmt.Errorf("%d not settled yet", open)
		}
		return err
	}}, 3*time.Minute, nil)
}

func settledStatuses() []string {
	var out []string
	for _, s := range []string{orderflow.StatusConfirmed, orderflow.StatusFailed, orderflow.StatusCancelled, orderflow.StatusDelivered,
		orderflow.StatusFulfilling, orderflow.StatusFulfillmentOverdue, orderflow.StatusPartiallyShipped, orderflow.StatusShipped} {
		if orderflow.Settled(s) {
			out = append(out, s)
		}
	}
	return out
}

// measureLatest restores the newest backup and the whole archive into a
// directory of its own, starts PostgreSQL on it (archiving off: it is a
// look, not a new primary), and counts the acknowledged orders it holds.
func (d *Drill) measureLatest(ctx context.Context, before, after []acked, rep *Report) error {
	dir := filepath.Join(d.Data, "latest")
	srv, err := d.c.repo()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := srv.Restore(ctx, filepath.Join(dir, "data"), backup.Target{}); err != nil {
		return err
	}
	// Its own pg_hba (trust on loopback) and ident file, no synchronous
	// standby to wait for: the restored configuration is the lost
	// server's, which may name files, addresses and members of its host.
	hba, ident := filepath.Join(dir, "pg_hba.conf"), filepath.Join(dir, "pg_ident.conf")
	if err := os.WriteFile(hba, []byte("local all all trust\nhost all all 127.0.0.1/32 trust\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(ident, nil, 0o644); err != nil {
		return err
	}
	port, err := freeRun(1)
	if err != nil {
		return err
	}
	u := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", net.JoinHostPort(lab.Loopback, strconv.Itoa(port)), dbName(d.stack.Config.Env["DATABASE_URL"]))
	node, err := lab.Postgres{URL: u, Private: true, Dir: dir, Log: filepath.Join(dir, "postgres.log")}.Node()
	if err != nil {
		return err
	}
	node.Proc.Command = append(node.Proc.Command, "-c", "archive_mode=off", "-c", "hba_file="+hba, "-c", "ident_file="+ident,
		"-c", "synchronous_standby_names=")
	node.ReadyTimeout = 2 * time.Minute
	node.After = nil
	look := lab.NewStack(lab.Config{Profile: "drill-latest", Root: d.Root, Data: dir}, []*lab.Node{node})
	look.Out = d.Out
	defer func() { _ = look.Down() }()
	if err := look.Up(ctx); err != nil {
		return err
	}
	if err := Promoted(ctx, u); err != nil {
		return err
	}
	rep.RestoreLatestSeconds = time.Since(start).Seconds()
	all := append(append([]acked{}, before...), after...)
	sort.Slice(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	held, err := acceptedIn(ctx, u, all)
	if err != nil {
		return err
	}
	var lastHeld time.Time
	for _, a := range all {
		if held[a.id] {
			lastHeld = a.at
		} else {
			rep.LostOrders++
		}
	}
	if rep.LostOrders > 0 {
		rep.RPOSeconds = all[len(all)-1].at.Sub(lastHeld).Seconds()
	}
	d.logf("restore to the end of the archive: %.1fs; %d of %d acknowledged orders lost, RPO %.1fs",
		rep.RestoreLatestSeconds, rep.LostOrders, len(all), rep.RPOSeconds)
	// What was acknowledged before the last archived segment must be there.
	for _, a := range all[:len(all)-rep.Accepted["after_target_at_loss"]] {
		if !held[a.id] {
			return fmt.Errorf("order %s was archived before the loss and the restore to latest lacks it", a.id)
		}
	}
	return nil
}

// Promoted waits, up to two minutes, until the server at url has left
// recovery: a restored server accepts read-only sessions as soon as it is
// consistent, and replays the archive up to its target before it takes
// writes.
func Promoted(ctx context.Context, url string) error {
	return lab.Wait(ctx, checkFunc{"recovery finished", func(ctx context.Context) error {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		var recovering bool
		if err := pool.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&recovering); err != nil {
			return err
		}
		if recovering {
			return errors.New("still in recovery")
		}
		return nil
	}}, 2*time.Minute, nil)
}

// acceptedIn reads which of the orders have their acceptance record
// (the idempotency key the gateway writes before its 2xx) in the database
// at url.
func acceptedIn(ctx context.Context, url string, orders []acked) (map[string]bool, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	ids := make([]string, len(orders))
	for i, a := range orders {
		ids[i] = a.id
	}
	rows, err := pool.Query(ctx, `SELECT order_id::text FROM idempotency_keys WHERE order_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("read acceptance records: %w", err)
	}
	defer rows.Close()
	held := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		held[id] = true
	}
	return held, rows.Err()
}

// check checks the restored stack: every order acknowledged before T has
// its acceptance record and its saga listed by Temporal, the sagas open at
// T complete, and the chaos invariants hold over them; nothing
// acknowledged after T is there.
func (d *Drill) check(ctx context.Context, pool *pgxpool.Pool, tc client.Client, ids, gone []string, parked []acked) ([]chaos.Invariant, error) {
	var out []chaos.Invariant
	records, err := acceptedIn(ctx, d.stack.Config.Env["DATABASE_URL"], toAcked(append(append([]string{}, ids...), gone...)))
	if err != nil {
		return nil, err
	}
	inv := chaos.Invariant{Name: "no order acknowledged after T: no acceptance record, order row or saga", Checked: len(gone)}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM orders WHERE order_id = ANY($1::uuid[])`, gone).Scan(&rows); err != nil {
		return nil, err
	}
	if rows > 0 {
		inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%d order rows", rows))
	}
	for _, id := range gone {
		if records[id] {
			inv.Counterexamples = append(inv.Counterexamples, id+": acceptance record")
		}
		// Temporal's own record, not visibility (which trails it).
		_, err := tc.DescribeWorkflow(ctx, "order-"+id, "")
		var nf *serviceerror.NotFound
		switch {
		case err == nil:
			inv.Counterexamples = append(inv.Counterexamples, id+": saga")
		case !errors.As(err, &nf):
			return nil, fmt.Errorf("describe order-%s: %w", id, err)
		}
	}
	out = append(out, passed(inv))
	d.logf("waiting for the %d sagas open at T to complete", len(parked))
	if err := settled(ctx, pool, toAcked(ids)); err != nil {
		return nil, err
	}
	inv = chaos.Invariant{Name: "the sagas open at T complete on the restored stack (CONFIRMED)", Checked: len(parked)}
	for _, a := range parked {
		var status string
		if err := pool.QueryRow(ctx, `SELECT status FROM orders WHERE order_id = $1`, a.id).Scan(&status); err != nil {
			return nil, err
		}
		if status != orderflow.StatusConfirmed {
			inv.Counterexamples = append(inv.Counterexamples, a.id+": "+status)
		}
	}
	out = append(out, passed(inv))
	// Visibility is written from the history service's task queue, which a
	// restore takes back to T with the rest: a saga started just before T
	// is listed, and one that wrote its order's last status is listed
	// closed, once the restored server has worked through it.
	wf := map[string]bool{}
	err = lab.Wait(ctx, checkFunc{"every saga of before T listed, none running", func(ctx context.Context) error {
		if wf, err = listOrderWorkflows(ctx, tc); err != nil {
			return err
		}
		for _, id := range ids {
			if !wf["order-"+id] {
				return fmt.Errorf("order-%s not listed", id)
			}
		}
		res, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: `WorkflowType = "Order" AND ExecutionStatus = "Running"`})
		if err == nil && res.GetCount() > 0 {
			err = fmt.Errorf("%d sagas listed running", res.GetCount())
		}
		return err
	}}, time.Minute, nil)
	if err != nil && ctx.Err() != nil {
		return nil, err
	}
	inv = chaos.Invariant{Name: "every order acknowledged before T has its acceptance record and its saga listed by Temporal", Checked: len(ids)}
	for _, id := range ids {
		if !records[id] {
			inv.Counterexamples = append(inv.Counterexamples, id+": no acceptance record")
		}
		if !wf["order-"+id] {
			inv.Counterexamples = append(inv.Counterexamples, id+": no saga listed")
		}
	}
	out = append(out, passed(inv))
	inv = chaos.Invariant{Name: "each order's status history ends in its status", Checked: len(ids)}
	var bad []string
	err = pool.QueryRow(ctx, `SELECT coalesce(array_agg(o.order_id::text), '{}') FROM orders o
		WHERE o.order_id = ANY($1::uuid[]) AND o.status IS DISTINCT FROM
		  (SELECT h.status FROM order_status_history h WHERE h.order_id = o.order_id ORDER BY h.id DESC LIMIT 1)`, ids).Scan(&bad)
	if err != nil {
		return nil, err
	}
	inv.Counterexamples = bad
	out = append(out, passed(inv))
	more, err := chaos.CheckState(ctx, pool, tc, ids, d.stock)
	if err != nil {
		return nil, err
	}
	return append(out, more...), nil
}

func passed(inv chaos.Invariant) chaos.Invariant {
	inv.Passed = len(inv.Counterexamples) == 0
	return inv
}

func toAcked(ids []string) []acked {
	out := make([]acked, len(ids))
	for i, id := range ids {
		out[i] = acked{id: id}
	}
	return out
}

// listOrderWorkflows lists every Order saga visibility knows.
func listOrderWorkflows(ctx context.Context, tc client.Client) (map[string]bool, error) {
	out := map[string]bool{}
	var token []byte
	for {
		res, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: `WorkflowType = "Order"`, NextPageToken: token, PageSize: 1000})
		if err != nil {
			return nil, fmt.Errorf("list sagas: %w", err)
		}
		for _, e := range res.GetExecutions() {
			out[e.GetExecution().GetWorkflowId()] = true
		}
		if token = res.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}

// Print writes the report for a person.
func (r Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\nrestore drill (%s), target T = %s\n", r.Topology, r.Target.Format(time.RFC3339Nano))
	for _, k := range slices.Sorted(maps.Keys(r.Accepted)) {
		fmt.Fprintf(w, "  orders %-24s %d\n", k, r.Accepted[k])
	}
	for _, k := range slices.Sorted(maps.Keys(r.BackupSeconds)) {
		fmt.Fprintf(w, "  %-4s backup                    %.1f s\n", k, r.BackupSeconds[k])
	}
	fmt.Fprintf(w, "  RPO (restore to latest)        %.1f s (%d acknowledged orders lost)\n", r.RPOSeconds, r.LostOrders)
	fmt.Fprintf(w, "  restore to latest              %.1f s\n", r.RestoreLatestSeconds)
	if r.Patroni != nil {
		p := r.Patroni
		fmt.Fprintf(w, "  restore to T through Patroni   %s the leader (timeline %d) after %.1f s; the replica (%s) streaming %.1f s later; the stack serving %.1f s after that\n\n",
			p.Leader, p.Timeline, p.LeaderSeconds, p.ReplicaMethod, p.ReplicaSeconds, p.StackSeconds)
	} else {
		fmt.Fprintf(w, "  restore to T                   %.1f s, stack serving %.1f s later\n\n", r.RestoreTargetSeconds, r.StackUpSeconds)
	}
	chaos.PrintInvariants(w, r.Invariants)
}

// Write stores the report as JSON in dir and returns the file's path.
func (r Report) Write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "restore-drill-"+r.Topology+"-"+r.Started.Format("20060102T150405Z")+".json")
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, b, 0o644)
}

// freeRun returns the first of n consecutive ports that are free now,
// starting from one the kernel gives out.
func freeRun(n int) (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		base := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		ok := base+n < 65536
		for p := base; ok && p < base+n; p++ {
			c, err := net.Listen("tcp", net.JoinHostPort(lab.Loopback, strconv.Itoa(p)))
			if err != nil {
				ok = false
				break
			}
			_ = c.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free ports", n)
}

func dbName(raw string) string {
	i := strings.LastIndex(raw, "/")
	name := raw[i+1:]
	name, _, _ = strings.Cut(name, "?")
	return name
}

// checkFunc is a lab.Check made of a function.
type checkFunc struct {
	name string
	fn   func(ctx context.Context) error
}

func (c checkFunc) Check(ctx context.Context) error { return c.fn(ctx) }
func (c checkFunc) String() string                  { return c.name }

// quiet discards the Temporal SDK's logs.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
