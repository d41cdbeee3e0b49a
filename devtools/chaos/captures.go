package chaos

import (
	"context"
	"fmt"

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

// qCapturedPerOrder is what was captured of each order of $1 over all its
// authorizations (a renewal's included), against its total.
const qCapturedPerOrder = `SELECT o.order_id::text, o.total_cents, sum(c.amount_cents)::bigint
	FROM orders o
	JOIN paysim.ledger c ON c.kind = 'capture' AND substr(c.idempotency_key, 9, 36) = o.order_id::text
	WHERE o.order_id::text = ANY($1::text[])
	GROUP BY o.order_id, o.total_cents
	ORDER BY o.order_id`

// qCaptureShipments is every capture of the orders $1 with the shipment it
// names (capture-<order>-<shipment>): whether it exists for that order, left
// its warehouse and is worth what was captured; and whether the order has
// shipments at all (an order without fulfillment is captured whole, under
// an empty shipment part).
const qCaptureShipments = `SELECT c.idempotency_key, c.amount_cents, s.shipment_id IS NOT NULL AS found,
	       coalesce(s.left_at IS NOT NULL, false) AS left_warehouse, coalesce(s.value_cents, 0), coalesce(s.status, ''),
	       EXISTS (SELECT 1 FROM shipments x WHERE x.order_id::text = substr(c.idempotency_key, 9, 36)) AS fulfilled,
	       coalesce(o.total_cents, 0)
	FROM paysim.ledger c
	LEFT JOIN shipments s ON s.shipment_id::text = substr(c.idempotency_key, 46)
	      AND s.order_id::text = substr(c.idempotency_key, 9, 36)
	LEFT JOIN orders o ON o.order_id::text = substr(c.idempotency_key, 9, 36)
	WHERE c.kind = 'capture' AND substr(c.idempotency_key, 9, 36) = ANY($1::text[])
	ORDER BY c.idempotency_key`

// checkCapturesWithinAuthorizations: no authorization was captured beyond
// what it held, and no order beyond its total over all its authorizations.
func checkCapturesWithinAuthorizations(ctx context.Context, pool *pgxpool.Pool, ids []string) (Invariant, error) {
	inv := Invariant{Name: "captures never exceed authorizations (paysim: per authorization, and per order over its renewals within its total)"}
	type auth struct {
		Instance, Ref, Key string
		Amount, Captured   int64
	}
	auths, err := collect[auth](pool.Query(ctx, qCapturedPerAuthorization, ids))
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
	type order struct {
		ID              string
		Total, Captured int64
	}
	orders, err := collect[order](pool.Query(ctx, qCapturedPerOrder, ids))
	if err != nil {
		return inv, fmt.Errorf("captures per order: %w", err)
	}
	for _, o := range orders {
		inv.Checked++
		if o.Captured > o.Total {
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("order %s: captured %d of a total of %d", o.ID, o.Captured, o.Total))
		}
	}
	return done(inv), nil
}

// checkNoCaptureWithoutShipment: every capture names a shipment of its
// order that left its warehouse, for no more than the shipment's value; an
// order without shipments (not fulfilled) is captured once, for its total.
func checkNoCaptureWithoutShipment(ctx context.Context, pool *pgxpool.Pool, ids []string) (Invariant, error) {
	inv := Invariant{Name: "no capture without a shipment (each paysim capture names a shipment of its order that left, for at most its value)"}
	type capture struct {
		Key         string
		Amount      int64
		Found, Left bool
		Value       int64
		Status      string
		Fulfilled   bool
		Total       int64
	}
	list, err := collect[capture](pool.Query(ctx, qCaptureShipments, ids))
	if err != nil {
		return inv, fmt.Errorf("captures and shipments: %w", err)
	}
	for _, c := range list {
		inv.Checked++
		var problem string
		switch {
		case !c.Fulfilled && len(c.Key) == len("capture-")+36+1:
			if c.Amount > c.Total {
				problem = fmt.Sprintf("captured %d of an unfulfilled order's total of %d", c.Amount, c.Total)
			}
		case !c.Found:
			problem = "names no shipment of its order"
		case !c.Left:
			problem = "its shipment never left its warehouse (" + c.Status + ")"
		case c.Amount > c.Value:
			problem = fmt.Sprintf("captured %d for a shipment worth %d", c.Amount, c.Value)
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
