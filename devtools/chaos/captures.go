package chaos

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The capture invariants of sagas that authorize, then capture as the order
// ships. They read paysim's ledger (the provider's own record of every
// authorization and capture, keyed as the payment activities key them:
// auth-<order>[-n], capture-<order>-<shipment>) beside orderflow's orders
// and shipments.

// qCapturedPerAuthorization is every authorization of the orders $1 with
// what was captured of it.
const qCapturedPerAuthorization = `SELECT a.instance, a.ref, a.idempotency_key, a.amount_cents,
	       coalesce(sum(c.amount_cents), 0)::bigint AS captured
	FROM paysim.ledger a
	LEFT JOIN paysim.ledger c ON c.instance = a.instance AND c.charge_ref = a.ref AND c.kind = 'capture'
	WHERE a.kind = 'authorization' AND substr(a.idempotency_key, 6, 36) = ANY($1::text[])
	GROUP BY a.instance, a.ref, a.idempotency_key, a.amount_cents
	ORDER BY a.idempotency_key`

// qCapturesOfOrders is every capture of the orders $1 (capture-<order>-
// <shipment>, or capture-<order>- for an order captured whole) in the
// ledger.
const qCapturesOfOrders = `SELECT idempotency_key, substr(idempotency_key, 9, 36), amount_cents
	FROM paysim.ledger WHERE kind = 'capture' AND substr(idempotency_key, 9, 36) = ANY($1::text[])
	ORDER BY idempotency_key`

// qOrderTotals and qOrderShipments are what orderflow recorded of the
// orders $1: their totals, and their shipments (whether each left its
// warehouse, its value).
const (
	qOrderTotals    = `SELECT order_id::text, total_cents FROM orders WHERE order_id::text = ANY($1::text[])`
	qOrderShipments = `SELECT order_id::text, shipment_id::text, left_at IS NOT NULL, value_cents, status
		FROM shipments WHERE order_id::text = ANY($1::text[])`
)

type ledgerCapture struct {
	Key, Order string
	Amount     int64
}

type orderShipment struct {
	Order, ID string
	Left      bool
	Value     int64
	Status    string
}

// capturesAndTotals reads the orders' captures from the ledger (ledger: the
// simulators' database, which need not be orderflow's) and their totals
// from orderflow's database.
func capturesAndTotals(ctx context.Context, ledger, db *pgxpool.Pool, ids []string) ([]ledgerCapture, map[string]int64, error) {
	caps, err := collect[ledgerCapture](ledger.Query(ctx, qCapturesOfOrders, ids))
	if err != nil {
		return nil, nil, fmt.Errorf("captures: %w", err)
	}
	type total struct {
		Order string
		Total int64
	}
	rows, err := collect[total](db.Query(ctx, qOrderTotals, ids))
	if err != nil {
		return nil, nil, fmt.Errorf("order totals: %w", err)
	}
	totals := map[string]int64{}
	for _, t := range rows {
		totals[t.Order] = t.Total
	}
	return caps, totals, nil
}

// checkCapturesWithinAuthorizations: no authorization was captured beyond
// what it held, and no order beyond its total over all its authorizations.
func checkCapturesWithinAuthorizations(ctx context.Context, ledger, db *pgxpool.Pool, ids []string) (Invariant, error) {
	inv := Invariant{Name: "captures never exceed authorizations (paysim: per authorization, and per order over its renewals within its total)"}
	type auth struct {
		Instance, Ref, Key string
		Amount, Captured   int64
	}
	auths, err := collect[auth](ledger.Query(ctx, qCapturedPerAuthorization, ids))
	if err != nil {
		return inv, fmt.Errorf("captures per authorization: %w", err)
	}
	for _, a := range auths {
		inv.Checked++
		if a.Captured > a.Amount {
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s %s (%s): captured %d of an authorization of %d",
				a.Instance, a.Ref, a.Key, a.Captured, a.Amount))
		}
	}
	caps, totals, err := capturesAndTotals(ctx, ledger, db, ids)
	if err != nil {
		return inv, err
	}
	captured := map[string]int64{}
	for _, c := range caps {
		captured[c.Order] += c.Amount
	}
	orders := make([]string, 0, len(captured))
	for o := range captured {
		orders = append(orders, o)
	}
	slices.Sort(orders)
	for _, o := range orders {
		inv.Checked++
		if captured[o] > totals[o] {
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("order %s: captured %d of a total of %d", o, captured[o], totals[o]))
		}
	}
	return done(inv), nil
}

// checkNoCaptureWithoutShipment: every capture names a shipment of its
// order that left its warehouse, for no more than the shipment's value; an
// order without shipments (not fulfilled) is captured once, for its total.
func checkNoCaptureWithoutShipment(ctx context.Context, ledger, db *pgxpool.Pool, ids []string) (Invariant, error) {
	inv := Invariant{Name: "no capture without a shipment (each paysim capture names a shipment of its order that left, for at most its value)"}
	caps, totals, err := capturesAndTotals(ctx, ledger, db, ids)
	if err != nil {
		return inv, err
	}
	ships, err := collect[orderShipment](db.Query(ctx, qOrderShipments, ids))
	if err != nil {
		return inv, fmt.Errorf("shipments: %w", err)
	}
	fulfilled := map[string]bool{}
	byKey := map[string]orderShipment{}
	for _, s := range ships {
		fulfilled[s.Order] = true
		byKey["capture-"+s.Order+"-"+s.ID] = s
	}
	for _, c := range caps {
		inv.Checked++
		s, found := byKey[c.Key]
		var problem string
		switch {
		case !fulfilled[c.Order] && len(c.Key) == len("capture-")+36+1:
			if c.Amount > totals[c.Order] {
				problem = fmt.Sprintf("captured %d of an unfulfilled order's total of %d", c.Amount, totals[c.Order])
			}
		case !found:
			problem = "names no shipment of its order"
		case !s.Left:
			problem = "its shipment never left its warehouse (" + s.Status + ")"
		case c.Amount > s.Value:
			problem = fmt.Sprintf("captured %d for a shipment worth %d", c.Amount, s.Value)
		}
		if problem != "" {
			inv.Counterexamples = append(inv.Counterexamples, c.Key+": "+problem)
		}
	}
	return done(inv), nil
}

// collect reads a query's rows into T by position.
func collect[T any](rows pgx.Rows, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[T])
}
