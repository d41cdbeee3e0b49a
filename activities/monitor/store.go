package monitor

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/internal/db"
)

// Store keeps the findings in invariant_findings (schema/0017): the
// monitor's activities write them, the gateway and `orderflow monitor
// findings` list them.
type Store struct {
	DB *pgxpool.Pool
}

// qRecord opens each finding not open yet and moves the last sighting of
// those that are; the run's time (not the database's clock) is the
// sighting's, so Resolve compares times of one clock.
const qRecord = `INSERT INTO invariant_findings (region, kind, subject, detail, first_seen, last_seen)
	SELECT $5, k, s, d, $4, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS f(k, s, d)
	ON CONFLICT (region, kind, subject) WHERE resolved_at IS NULL DO UPDATE
		SET detail = EXCLUDED.detail, last_seen = greatest(invariant_findings.last_seen, EXCLUDED.last_seen)
	RETURNING first_seen = last_seen`

// Record stores what a run of the region's monitor that began at seen
// found: a finding not open yet opens a row, one open already is seen
// again. Findings of one kind and subject are one row, their details
// joined. It returns how many rows it opened.
func (s Store) Record(ctx context.Context, region string, findings []Finding, seen time.Time) (int, error) {
	merged := map[[2]string][]string{}
	for _, f := range findings {
		k := [2]string{f.Kind, f.Subject}
		merged[k] = append(merged[k], f.Detail)
	}
	if len(merged) == 0 {
		return 0, nil
	}
	keys := make([][2]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	// One order of rows, so concurrent runs never deadlock on each other's.
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"/"+keys[i][1] < keys[j][0]+"/"+keys[j][1] })
	kinds, subjects, details := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		kinds[i], subjects[i], details[i] = k[0], k[1], strings.Join(merged[k], "; ")
	}
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	rows, err := s.DB.Query(ctx, qRecord, kinds, subjects, details, seen, region)
	if err != nil {
		return 0, fmt.Errorf("record findings: %w", err)
	}
	fresh, err := pgx.CollectRows(rows, pgx.RowTo[bool])
	if err != nil {
		return 0, fmt.Errorf("record findings: %w", err)
	}
	opened := 0
	for _, f := range fresh {
		if f {
			opened++
		}
	}
	return opened, nil
}

// Resolve closes the region's open findings of the kinds given that no run
// begun at or after since saw again: a run over everything (the nightly
// one) that checked those kinds and no longer found them. It returns how
// many it closed.
func (s Store) Resolve(ctx context.Context, region string, kinds []string, since time.Time) (int64, error) {
	const q = `UPDATE invariant_findings SET resolved_at = now()
		WHERE resolved_at IS NULL AND region = $3 AND kind = ANY($1) AND last_seen < $2`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	tag, err := s.DB.Exec(ctx, q, kinds, since, region)
	if err != nil {
		return 0, fmt.Errorf("resolve findings: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Row is a finding as stored.
type Row struct {
	ID         int64      `json:"id"`
	Region     string     `json:"region"`
	Kind       string     `json:"kind"`
	Subject    string     `json:"subject"`
	Detail     string     `json:"detail"`
	FirstSeen  time.Time  `json:"first_seen"`
	LastSeen   time.Time  `json:"last_seen"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
}

// Query selects findings: of one kind ("" any), open ones only unless All,
// after the id After, at most Limit.
type Query struct {
	Kind  string
	All   bool
	After int64
	Limit int
}

// Page is a page of findings, oldest first; Next is the After of the
// following page, 0 on the last one.
type Page struct {
	Findings []Row
	Next     int64
}

// List reads a page of findings.
func (s Store) List(ctx context.Context, q Query) (Page, error) {
	const sql = `SELECT id, region, kind, subject, detail, first_seen, last_seen, resolved_at FROM invariant_findings
		WHERE ($1 = '' OR kind = $1) AND ($2 OR resolved_at IS NULL) AND id > $3
		ORDER BY id LIMIT $4`
	rows, err := s.DB.Query(ctx, sql, q.Kind, q.All, q.After, q.Limit+1)
	if err != nil {
		return Page{}, fmt.Errorf("read findings: %w", err)
	}
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Row])
	if err != nil {
		return Page{}, fmt.Errorf("read findings: %w", err)
	}
	page, last := activities.Page(all, q.Limit)
	out := Page{Findings: page}
	if last != nil {
		out.Next = last.ID
	}
	return out, nil
}

// OpenCounts returns the number of open findings of every kind (0 for a
// kind with none).
func (s Store) OpenCounts(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for _, k := range Kinds() {
		out[k] = 0
	}
	rows, err := s.DB.Query(ctx, `SELECT kind, count(*) FROM invariant_findings WHERE resolved_at IS NULL GROUP BY kind`)
	if err != nil {
		return nil, fmt.Errorf("count findings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("count findings: %w", err)
		}
		out[k] = n
	}
	return out, rows.Err()
}

// ObserveFindings exports the open findings of each kind as the gauge
// orderflow.invariant.findings (Prometheus: orderflow_invariant_findings,
// label kind), read from the table at every collection, so every process
// that exports it reports the same count and a repaired finding stops
// counting once a run resolved it. A collection that cannot read the table
// within timeout reports nothing. The returned function stops it.
func ObserveFindings(s Store, timeout time.Duration) (func(), error) {
	m := otel.Meter("github.com/orderflow/orderflow/activities/monitor")
	gauge, err := m.Int64ObservableGauge("orderflow.invariant.findings",
		metric.WithDescription("Open invariant findings by kind (lost_order, stuck_saga, charge_mismatch, refund_over_charge, stock_drift, ledger_mismatch)."))
	if err != nil {
		return nil, fmt.Errorf("findings gauge: %w", err)
	}
	reg, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		counts, err := s.OpenCounts(ctx)
		if err != nil {
			return err
		}
		for k, n := range counts {
			o.ObserveInt64(gauge, n, metric.WithAttributes(attribute.String("kind", k)))
		}
		return nil
	}, gauge)
	if err != nil {
		return nil, fmt.Errorf("findings gauge: %w", err)
	}
	return func() { _ = reg.Unregister() }, nil
}
