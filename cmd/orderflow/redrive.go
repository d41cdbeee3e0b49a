package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/internal/temporal"
	"github.com/orderflow/orderflow/workers"
	"github.com/orderflow/orderflow/workflows/order"
)

const redriveUsage = `usage: orderflow redrive [--namespace NS] [--since 15m|RFC3339 time]

Starts the saga of every order accepted since --since (default
FAILOVER_REDRIVE_WINDOW ago) whose saga the namespace (default
TEMPORAL_NAMESPACE) does not have, as the gateway started it; sagas that exist
are left alone (docs/regions.md). Reads DATABASE_URL (the region's database),
the local Temporal cluster and the PII keys; prints a JSON report.
`

// runRedrive is `orderflow redrive`.
func runRedrive(ctx context.Context, out io.Writer, lookup env, args []string) error {
	fs := flag.NewFlagSet("redrive", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ns := fs.String("namespace", "", "")
	since := fs.String("since", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return fmt.Errorf("redrive: bad arguments %q\n%s", args, redriveUsage)
	}
	cfg, v := loadFailover(lookup)
	if err := v.Err(); err != nil {
		return err
	}
	if *ns != "" {
		cfg.Boot.Temporal.Namespace = *ns
	}
	from, err := parseSince(*since, time.Now(), cfg.RedriveWindow)
	if err != nil {
		return fmt.Errorf("redrive: %w", err)
	}
	return withRegion(ctx, cfg.Boot, "redrive", func(r *region, log *zap.Logger) error {
		rep, err := r.redrive(ctx, from, log)
		if werr := writeJSON(out, rep); werr != nil && err == nil {
			err = werr
		}
		return err
	})
}

// withRegion runs fn with the region's database and Temporal client, and
// the command's logger, and closes them after.
func withRegion(ctx context.Context, c boot.Config, command string, fn func(*region, *zap.Logger) error) error {
	log, err := boot.Logger(c, command)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // stderr
	r, err := openRegion(ctx, c, log)
	if err != nil {
		return err
	}
	defer r.close()
	return fn(r, log)
}

// parseSince reads --since: a duration back from now, or an RFC 3339 time;
// empty is window back from now.
func parseSince(s string, now time.Time, window time.Duration) (time.Time, error) {
	if s == "" {
		return now.Add(-window), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a positive duration (15m) or an RFC 3339 time", s)
	}
	return t, nil
}

// region is what a re-drive uses: the region's database, a client on the
// namespace in the local cluster, the PII keys.
type region struct {
	db        *pgxpool.Pool
	temporal  client.Client
	keys      *pii.Keyring
	namespace string
}

func openRegion(ctx context.Context, c boot.Config, log *zap.Logger) (*region, error) {
	keys, err := pii.Load(c.PII)
	if err != nil {
		return nil, err
	}
	pool, err := db.Open(ctx, c.DatabaseURL, db.WithTLSMinVersion(c.TLSMinVersion))
	if err != nil {
		return nil, err
	}
	tc, err := temporal.Dial(c.Temporal, temporal.Options{Log: log, Keys: keys, OrderIDOf: order.IDOf})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &region{db: pool, temporal: tc, keys: keys, namespace: c.Temporal.Namespace}, nil
}

func (r *region) close() {
	r.temporal.Close()
	r.db.Close()
}

func (r *region) redrive(ctx context.Context, since time.Time, log *zap.Logger) (workers.RedriveReport, error) {
	return workers.Redrive(ctx, r.temporal, r.namespace, orders.Store{DB: r.db}, r.keys, since, log)
}

// writeJSON writes v indented, for people and jq alike.
func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
