package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/activities/monitor"
	"github.com/orderflow/orderflow/devtools/chaos"
	"github.com/orderflow/orderflow/devtools/lab"
	"github.com/orderflow/orderflow/devtools/regions"
)

// Report is what a drill measured and checked.
type Report struct {
	Started  time.Time `json:"started"`
	Lost     string    `json:"lost_region"`
	Survivor string    `json:"surviving_region"`
	Rate     float64   `json:"rate_per_region"`
	Seed     uint64    `json:"seed,omitempty"`
	// Lag is the replication lag before the fault.
	Lag   Lag       `json:"lag_before_fault"`
	CutAt time.Time `json:"cut_at"`
	// InFlightAtCut: the lost region's orders accepted before the cut.
	InFlightAtCut int `json:"in_flight_at_cut"`
	// Seconds from the cut: the watcher's detection, the failover's last
	// step done, the first order of a lost region's customer accepted
	// again, every saga in flight at the cut ended.
	DetectionSec *float64 `json:"detection_s,omitempty"`
	FailoverSec  *float64 `json:"failover_done_s,omitempty"`
	RTOAcceptSec *float64 `json:"rto_first_order_accepted_s,omitempty"`
	RTOSagasSec  *float64 `json:"rto_in_flight_sagas_ended_s,omitempty"`
	// Failover is `orderflow failover --watch`'s record.
	Failover *Record `json:"failover"`
	// FailoverAgain are the runs of `orderflow failover` after the
	// watcher's, when it did not finish (each step is idempotent).
	FailoverAgain []*Record `json:"failover_again,omitempty"`
	// Outage counts each region's placements from the cut to the failback.
	Outage   []RegionRefusals `json:"placements_cut_to_failback"`
	Failback *Failback        `json:"failback,omitempty"`
	Regions  []RegionResult   `json:"regions"`
	// Objectives are issue 14's, measured; Passed when every one is met.
	Objectives []Objective `json:"objectives"`
	Passed     bool        `json:"passed"`
	Error      string      `json:"error,omitempty"`
}

// Record is the part of `orderflow failover`'s JSON record the drill reads.
type Record struct {
	Kind      string    `json:"kind"`
	StartedAt time.Time `json:"started_at"`
	Detection *struct {
		FirstFailure time.Time `json:"first_failure"`
		DetectedAt   time.Time `json:"detected_at"`
	} `json:"detection,omitempty"`
	Steps []struct {
		Name    string          `json:"name"`
		MS      int64           `json:"ms"`
		Changed bool            `json:"changed"`
		Detail  json.RawMessage `json:"detail,omitempty"`
		Error   string          `json:"error,omitempty"`
	} `json:"steps"`
	TotalMS int64 `json:"total_ms"`
	OK      bool  `json:"ok"`
}

// end is when the record's last step ended.
func (r *Record) end() time.Time { return r.StartedAt.Add(time.Duration(r.TotalMS) * time.Millisecond) }

// Redrive is the re-drive step's report (workers.RedriveReport): the
// sagas the survivor did not have, started again from their acceptance
// records.
func (r *Record) Redrive() (examined, present int, started []string) {
	for _, s := range r.Steps {
		if s.Name != "redrive" {
			continue
		}
		var rep struct {
			Examined int      `json:"examined"`
			Present  int      `json:"present"`
			Started  []string `json:"started"`
		}
		_ = json.Unmarshal(s.Detail, &rep)
		return rep.Examined, rep.Present, rep.Started
	}
	return 0, 0, nil
}

// Failback is how the lost region came back.
type Failback struct {
	// Fenced are the lost region's nodes stopped before its links came up.
	Fenced   []string  `json:"fenced"`
	HealedAt time.Time `json:"healed_at"`
	// Seconds: from the heal to its cluster knowing the survivor is
	// active; the rebuild of its primary as the promoted copy's standby;
	// from the heal to its customers served by its own gateway again.
	HeardSec       *float64 `json:"heard_s,omitempty"`
	RebuildSec     *float64 `json:"rebuild_s,omitempty"`
	ServedAgainSec *float64 `json:"served_again_s,omitempty"`
	// OldPrimaryInRecovery: the old primary came back as a standby only.
	OldPrimaryInRecovery bool    `json:"old_primary_in_recovery"`
	Record               *Record `json:"record,omitempty"`
	// Placements counts each region's placements from the heal until its
	// customers were served by its own gateway again.
	Placements []RegionRefusals `json:"placements_during_failback"`
}

// RegionRefusals are a region's placements in a window.
type RegionRefusals struct {
	Region string `json:"region"`
	Refusals
}

// RegionResult is a home region's orders and invariants at the end.
type RegionResult struct {
	Region string `json:"region"`
	// Lost are accepted orders missing from the region's database.
	Lost           int      `json:"accepted_lost"`
	DoubleCharged  []string `json:"double_charged"`
	DuplicateMails []string `json:"duplicate_notifications"`
	chaos.Report
}

// Lag is the replication lag measured before the fault.
type Lag struct {
	// Temporal is each cluster's replication_latency (the history
	// service's, receiving the other cluster's tasks) since it started.
	Temporal map[string]*Latency `json:"temporal_replication_latency"`
	Postgres []PostgresLag       `json:"postgres"`
	Errors   []string            `json:"errors,omitempty"`
}

// PostgresLag is one standby as its primary's pg_stat_replication sees it.
type PostgresLag struct {
	Primary     string  `json:"primary"`
	Standby     string  `json:"standby"`
	SyncState   string  `json:"sync_state"`
	ReplayLagMS float64 `json:"replay_lag_ms"`
	ReplayBytes int64   `json:"replay_behind_bytes"`
}

const qReplication = `SELECT application_name, sync_state, COALESCE(EXTRACT(epoch FROM replay_lag) * 1000, 0)::float8,
       COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint
FROM pg_stat_replication ORDER BY application_name`

// lag reads both clusters' replication_latency and both primaries'
// pg_stat_replication.
func (d *Drill) lag(ctx context.Context) Lag {
	lag := Lag{Temporal: map[string]*Latency{}}
	for _, r := range regions.Names {
		u := "http://" + net.JoinHostPort(d.p.Addr(r, regions.RoleTemporal), strconv.Itoa(regions.TemporalPort+9)) + "/metrics"
		if text, err := get(ctx, u); err != nil {
			lag.Errors = append(lag.Errors, err.Error())
		} else if l, ok := histogramMean(text, "replication_latency"); ok {
			lag.Temporal[r] = &l
		}
		conn, err := pgx.Connect(ctx, d.p.PrimaryAdminURL(r, "postgres"))
		if err != nil {
			lag.Errors = append(lag.Errors, err.Error())
			continue
		}
		rows, _ := conn.Query(ctx, qReplication)
		for rows.Next() {
			l := PostgresLag{Primary: regions.Host(r, regions.RolePostgres)}
			if err := rows.Scan(&l.Standby, &l.SyncState, &l.ReplayLagMS, &l.ReplayBytes); err == nil {
				lag.Postgres = append(lag.Postgres, l)
			}
		}
		if err := rows.Err(); err != nil {
			lag.Errors = append(lag.Errors, err.Error())
		}
		_ = conn.Close(ctx)
	}
	return lag
}

func get(ctx context.Context, u string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", u, res.Status)
	}
	return string(b), err
}

// check settles each region's orders and checks them: the chaos
// invariants in each region's database (wherever it is writable now) and
// against both providers' ledgers, accepted orders lost, double charges,
// duplicate notifications; then the objectives.
func (d *Drill) check(ctx context.Context, rep *Report) error {
	listed, err := chaos.ListLedgers(ctx, d.ledger)
	if err != nil {
		return err
	}
	ledger := monitor.Ledgers(listed)
	mails, err := d.mailed(ctx)
	if err != nil {
		return err
	}
	for _, r := range d.regions {
		cr, err := r.runner.Settle(ctx, r.catalog)
		if err != nil {
			return fmt.Errorf("settle %s: %w", r.name, err)
		}
		ids := r.runner.AcceptedIDs()
		res := RegionResult{Region: r.name, Report: cr, Lost: cr.Statuses["(missing)"], DoubleCharged: doubleCharged(ledger, ids),
			DuplicateMails: duplicated(mails, ids)}
		rep.Regions = append(rep.Regions, res)
	}
	rep.Objectives = d.objectives(rep)
	rep.Passed = true
	for _, o := range rep.Objectives {
		rep.Passed = rep.Passed && o.Met
	}
	return nil
}

// objectives are issue 14's, as this drill measured them.
func (d *Drill) objectives(rep *Report) []Objective {
	var lost, double, dup int
	for _, r := range rep.Regions {
		lost, double, dup = lost+r.Lost, double+len(r.DoubleCharged), dup+len(r.DuplicateMails)
	}
	out := []Objective{
		within("failover done, every step ok (from the cut)", rep.FailoverSec, RTOObjective),
		within("RTO: the first "+rep.Lost+" customer's order accepted again", rep.RTOAcceptSec, RTOObjective),
		within("RTO: every "+rep.Lost+" saga in flight at the cut ended", rep.RTOSagasSec, RTOObjective),
		none("accepted orders lost (both regions)", lost),
		none("orders charged twice (both providers' ledgers)", double),
		none("notifications sent twice (mailpit)", dup),
	}
	fenced := Objective{Name: "the old " + rep.Lost + " primary came back as a standby only (fenced), failback done", Target: "yes", Value: "no"}
	if fb := rep.Failback; fb != nil && fb.OldPrimaryInRecovery && fb.ServedAgainSec != nil {
		fenced.Value, fenced.Met = "yes", true
	}
	out = append(out, fenced)
	for _, r := range rep.Regions {
		held := 0
		for _, inv := range r.Invariants {
			if inv.Passed {
				held++
			}
		}
		out = append(out, Objective{Name: "chaos invariants in " + r.Region, Target: "all", Value: fmt.Sprintf("%d of %d held", held, len(r.Invariants)),
			Met: held == len(r.Invariants) && len(r.Invariants) > 0})
	}
	return out
}

// mailed lists the e-mails mailpit holds: the order id in each one's
// Message-ID (notification-<id>.<order>@...) with its subject.
func (d *Drill) mailed(ctx context.Context) ([]mail, error) {
	base := "http://" + net.JoinHostPort(lab.Loopback, strconv.Itoa(d.p.Config.Ports["mailpit-ui"]))
	var out []mail
	for start := 0; ; {
		text, err := get(ctx, base+"/api/v1/messages?"+url.Values{"start": {strconv.Itoa(start)}, "limit": {"1000"}}.Encode())
		if err != nil {
			return nil, fmt.Errorf("mailpit: %w", err)
		}
		var page struct {
			Messages []struct {
				MessageID string `json:"MessageID"`
				Subject   string `json:"Subject"`
			} `json:"messages"`
		}
		if err := json.Unmarshal([]byte(text), &page); err != nil {
			return nil, fmt.Errorf("mailpit: %w", err)
		}
		for _, m := range page.Messages {
			out = append(out, mail{order: orderOfMessageID(m.MessageID), subject: m.Subject})
		}
		if len(page.Messages) < 1000 {
			return out, nil
		}
		start += len(page.Messages)
	}
}

// mail is one e-mail sent: its order and subject.
type mail struct{ order, subject string }

// orderOfMessageID is the order id in a notification's Message-ID
// (notify.SMTPMailer.MessageID), "" for another one.
func orderOfMessageID(id string) string {
	id = strings.Trim(id, "<>")
	rest, ok := strings.CutPrefix(id, "notification-")
	if !ok {
		return ""
	}
	_, rest, ok = strings.Cut(rest, ".")
	if !ok {
		return ""
	}
	order, _, _ := strings.Cut(rest, "@")
	return order
}

// duplicated are the orders of ids that were sent the same notification
// (same subject) more than once, each with the subject.
func duplicated(mails []mail, ids []string) []string {
	ours := map[string]bool{}
	for _, id := range ids {
		ours[id] = true
	}
	seen := map[mail]int{}
	var out []string
	for _, m := range mails {
		if !ours[m.order] {
			continue
		}
		if seen[m]++; seen[m] == 2 {
			out = append(out, m.order+" "+m.subject)
		}
	}
	return out
}

// Print writes the report as tables.
func (rep *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\nregion drill: %s lost, %s survives; %.0f orders/s to each region\n\n", rep.Lost, rep.Survivor, rep.Rate)
	fmt.Fprintf(w, "%-58s %s\n", "replication lag before the fault", "")
	for _, r := range regions.Names {
		if l := rep.Lag.Temporal[r]; l != nil {
			fmt.Fprintf(w, "  %-56s %.1f ms mean (%.0f tasks)\n", "Temporal replication_latency, cluster "+r, l.MeanMS, l.Count)
		}
	}
	for _, l := range rep.Lag.Postgres {
		fmt.Fprintf(w, "  %-56s %.1f ms replay lag, %d bytes behind (%s)\n", "PostgreSQL "+l.Primary+" -> standby "+l.Standby, l.ReplayLagMS, l.ReplayBytes, l.SyncState)
	}
	secs := func(name string, v *float64) {
		if v != nil {
			fmt.Fprintf(w, "%-58s %6.1f s\n", name, *v)
		} else {
			fmt.Fprintf(w, "%-58s %8s\n", name, "-")
		}
	}
	fmt.Fprintln(w)
	secs("detection (watcher: 3 failed checks), from the cut", rep.DetectionSec)
	if f := rep.Failover; f != nil {
		for _, s := range f.Steps {
			fmt.Fprintf(w, "  %-56s %6d ms\n", "failover step "+s.Name, s.MS)
		}
		examined, present, started := f.Redrive()
		fmt.Fprintf(w, "  %-56s %d examined, %d present, %d re-driven\n", "re-drive (sagas behind the replicated point)", examined, present, len(started))
		for i, a := range rep.FailoverAgain {
			examined, present, started := a.Redrive()
			fmt.Fprintf(w, "  %-56s %d ms; re-drive: %d examined, %d present, %d re-driven; ok %t\n", fmt.Sprintf("failover run again (%d)", i+1),
				a.TotalMS, examined, present, len(started), a.OK)
		}
	}
	secs("failover done (every step ok), from the cut", rep.FailoverSec)
	secs("RTO: first "+rep.Lost+" order accepted again, from the cut", rep.RTOAcceptSec)
	secs(fmt.Sprintf("RTO: the %d %s sagas in flight at the cut ended", rep.InFlightAtCut, rep.Lost), rep.RTOSagasSec)
	for _, o := range rep.Outage {
		fmt.Fprintf(w, "  %-56s %d sent, %d accepted, %d 503, %d other failures\n", o.Region+" placements, cut to failback", o.Sent, o.Accepted, o.Status503, o.Failed)
	}
	if fb := rep.Failback; fb != nil {
		fmt.Fprintf(w, "%-58s %v\n", "fenced before the heal", fb.Fenced)
		secs("failback: heal to the cluster knowing it is standby", fb.HeardSec)
		secs("failback: old primary rebuilt as a standby", fb.RebuildSec)
		if fb.Record != nil {
			for _, s := range fb.Record.Steps {
				fmt.Fprintf(w, "  %-56s %6d ms\n", "failback step "+s.Name, s.MS)
			}
		}
		secs("failback: heal to "+rep.Lost+"'s customers on its own gateway", fb.ServedAgainSec)
		for _, o := range fb.Placements {
			fmt.Fprintf(w, "  %-56s %d sent, %d accepted, %d 503, %d other failures\n", o.Region+" placements during the failback", o.Sent, o.Accepted, o.Status503, o.Failed)
		}
	}
	fmt.Fprintf(w, "\n%-8s %8s %9s %6s %8s %7s  %s\n", "region", "sent", "accepted", "lost", "charged2", "mailed2", "statuses")
	for _, r := range rep.Regions {
		var st []string
		for k, v := range r.Statuses {
			st = append(st, fmt.Sprintf("%s %d", strings.ToLower(k), v))
		}
		fmt.Fprintf(w, "%-8s %8d %9d %6d %8d %7d  %s\n", r.Region, r.Sent, r.Accepted, r.Lost, len(r.DoubleCharged), len(r.DuplicateMails), strings.Join(sorted(st), ", "))
	}
	for _, r := range rep.Regions {
		fmt.Fprintf(w, "\ninvariants, %s:\n", r.Region)
		chaos.PrintInvariants(w, r.Invariants)
	}
	fmt.Fprintf(w, "\n%-4s  %-70s %-18s %s\n", "", "objective", "measured", "target")
	for _, o := range rep.Objectives {
		v := "PASS"
		if !o.Met {
			v = "FAIL"
		}
		fmt.Fprintf(w, "%-4s  %-70s %-18s %s\n", v, o.Name, o.Value, o.Target)
	}
	if rep.Error != "" {
		fmt.Fprintf(w, "\nerror: %s\n", rep.Error)
	}
}

// Write stores the report as JSON under dir and returns the file's path.
func (rep *Report) Write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, rep.Started.Format("20060102T150405Z")+".json")
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, b, 0o644)
}
