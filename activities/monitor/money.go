package monitor

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/activities/payment"
)

// Listed is one provider's ledger as it listed it: the charges made within
// a window, each with what of it was refunded.
type Listed struct {
	Provider string                 `json:"provider"`
	Charges  []payment.LedgerCharge `json:"charges"`
}

// Money is what an order's charges and authorizations at its providers add
// up to. Charged is what the customer paid: a charge's amount, what was
// captured of an authorization (captured, not authorized, is paid).
// Charges counts the charges and the authorizations that took money;
// Authorizations every authorization, and Authorized what they held.
type Money struct {
	Charges        int
	Charged        int64
	Refunded       int64
	Authorizations int
	Authorized     int64
}

// keyOrder finds the order in an idempotency key orderflow sends:
// charge-<order>, charge-<order>-<n> (payment.ChargeKey), auth-<order>,
// auth-<order>-<n> (payment.AuthorizationKey).
var keyOrder = regexp.MustCompile(`^(?:charge|auth)-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:-|$)`)

// OrderOfKey returns the order a charge's idempotency key belongs to; false
// for a key orderflow did not make.
func OrderOfKey(key string) (string, bool) {
	m := keyOrder.FindStringSubmatch(key)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// Ledgers adds up the listed charges by order, across providers.
func Ledgers(listed []Listed) map[string]*Money {
	out := map[string]*Money{}
	for _, l := range listed {
		for _, c := range l.Charges {
			id, ok := OrderOfKey(c.IdempotencyKey)
			if !ok {
				continue
			}
			m := out[id]
			if m == nil {
				m = &Money{}
				out[id] = m
			}
			if c.Authorization {
				m.Authorizations, m.Authorized = m.Authorizations+1, m.Authorized+c.AmountCents
			}
			if !c.Authorization || c.Paid() > 0 {
				m.Charges++
			}
			m.Charged, m.Refunded = m.Charged+c.Paid(), m.Refunded+c.RefundedCents
		}
	}
	return out
}

// CheckCharges checks each settled order's money at its providers
// (KindChargeMismatch): a paid order (CONFIRMED, waiting on its carrier,
// DELIVERED) has exactly one charge, of its total, refunded in part only
// once fulfilled (a lost parcel, a return) and never above it; a FAILED or
// CANCELLED order is refunded all it was charged. An order paid by
// authorization (one, or one and its renewals) pays what its shipments
// captured: never more than its total, all of it once SHIPPED or
// DELIVERED, from at most one authorization at a time.
func CheckCharges(orders []Order, ledger map[string]*Money) Report {
	rep := Report{Checked: len(orders)}
	for _, o := range orders {
		m := ledger[o.ID]
		if m == nil {
			m = &Money{}
		}
		switch {
		case o.paid() && m.Authorizations > 0:
			whole := o.Status == orderflow.StatusShipped || o.Status == orderflow.StatusDelivered
			if m.Charges > m.Authorizations || m.Charged > o.Total || whole && m.Charged != o.Total || m.Refunded > m.Charged {
				rep.add(finding(KindChargeMismatch, o.ID, "%s %s total %d: %d authorizations (%d) captured %d, refunded %d",
					o.ID, o.Status, o.Total, m.Authorizations, m.Authorized, m.Charged, m.Refunded))
			}
		case o.paid():
			// A delivered order may have a lost shipment refunded in part.
			// So may one still on its carrier's way: a lost parcel is
			// refunded before the order ends.
			if m.Charges != 1 || m.Charged != o.Total || m.Refunded > m.Charged || m.Refunded > 0 && o.Status == orderflow.StatusConfirmed {
				rep.add(finding(KindChargeMismatch, o.ID, "%s %s total %d: %d charges (%d), refunded %d", o.ID, o.Status, o.Total, m.Charges, m.Charged, m.Refunded))
			}
		case o.Status == orderflow.StatusFailed || o.Status == orderflow.StatusCancelled:
			if m.Charged != m.Refunded {
				rep.add(finding(KindChargeMismatch, o.ID, "%s %s: %d charges (%d), refunded %d", o.ID, o.Status, m.Charges, m.Charged, m.Refunded))
			}
		}
	}
	return rep
}

// CheckRefunds checks that no order's refunds add up to more than it
// paid (its charges, and what was captured of its authorizations),
// whatever the mix of lost parcels, returns and compensations
// (KindRefundOverCharge).
func CheckRefunds(ledger map[string]*Money) Report {
	rep := Report{Checked: len(ledger)}
	for _, id := range slices.Sorted(maps.Keys(ledger)) {
		if m := ledger[id]; m.Refunded > m.Charged {
			rep.add(finding(KindRefundOverCharge, id, "%s: charged %d, refunded %d", id, m.Charged, m.Refunded))
		}
	}
	return rep
}

// qUnlisted finds the orders with a payment on a provider not among those
// listed ($2): a provider that cannot list its ledger, or one no longer
// configured.
const qUnlisted = `SELECT DISTINCT order_id::text FROM payments WHERE order_id = ANY($1::uuid[]) AND provider <> ALL($2)`

// Listable returns the orders whose every payment is on a listed provider:
// the only ones whose money the listed ledgers can tell.
func Listable(ctx context.Context, q activities.Querier, orders []Order, listed []Listed) ([]Order, error) {
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	providers := make([]string, len(listed))
	for i, l := range listed {
		providers[i] = l.Provider
	}
	rows, err := q.Query(ctx, qUnlisted, ids, providers)
	if err != nil {
		return nil, fmt.Errorf("read payments: %w", err)
	}
	unlisted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read payments: %w", err)
	}
	skip := map[string]bool{}
	for _, id := range unlisted {
		skip[id] = true
	}
	var out []Order
	for _, o := range orders {
		if !skip[o.ID] {
			out = append(out, o)
		}
	}
	return out, nil
}

// qRecorded is what orderflow's payment log records of the orders' charges,
// authorizations and refunds on the providers that were listed.
const qRecorded = `SELECT provider, order_id::text, kind, coalesce(provider_ref, ''), idempotency_key, amount_cents, created_at
	FROM payment_transactions
	WHERE order_id = ANY($1::uuid[]) AND provider = ANY($2) AND kind IN ('charge', 'authorization', 'refund')
	ORDER BY id`

// recorded is a charge as orderflow's payment log records it.
type recorded struct {
	order, key string
	amount     int64
	at         time.Time
}

// CheckLedger reconciles each listed provider's ledger with orderflow's
// payment log over the settled orders given (KindLedgerMismatch): every
// charge the provider holds under one of their keys is recorded, with its
// amount; every charge recorded in [since, until) (the window the
// providers were listed over; zero times leave it open) is held by the
// provider; and per order, the refunds recorded add up to what the
// provider refunded. A provider that was not listed is not checked.
func CheckLedger(ctx context.Context, q activities.Querier, orders []Order, listed []Listed, since, until time.Time) (Report, error) {
	var rep Report
	inScope := map[string]bool{}
	var ids []string
	for _, o := range orders {
		if o.settled() {
			inScope[o.ID] = true
			ids = append(ids, o.ID)
		}
	}
	providers := make([]string, 0, len(listed))
	for _, l := range listed {
		providers = append(providers, l.Provider)
	}
	charges := map[string]map[string]recorded{} // provider -> charge id -> charge
	refunded := map[string]int64{}              // provider/order -> refunded
	rows, err := q.Query(ctx, qRecorded, ids, providers)
	if err != nil {
		return Report{}, fmt.Errorf("read payment log: %w", err)
	}
	for rows.Next() {
		var provider, kind, ref string
		var r recorded
		if err := rows.Scan(&provider, &r.order, &kind, &ref, &r.key, &r.amount, &r.at); err != nil {
			rows.Close()
			return Report{}, fmt.Errorf("read payment log: %w", err)
		}
		if kind == "refund" {
			refunded[provider+"/"+r.order] += r.amount
			continue
		}
		if charges[provider] == nil {
			charges[provider] = map[string]recorded{}
		}
		charges[provider][ref] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Report{}, fmt.Errorf("read payment log: %w", err)
	}
	for _, l := range listed {
		held := map[string]bool{}
		atProvider := map[string]int64{} // order -> refunded at the provider
		// The orders whose refunds are compared: those with a charge the
		// provider listed or that payments record within the window.
		compared := map[string]bool{}
		for _, c := range l.Charges {
			id, ok := OrderOfKey(c.IdempotencyKey)
			if !ok || !inScope[id] {
				continue
			}
			rep.Checked++
			held[c.ID] = true
			compared[id] = true
			atProvider[id] += c.RefundedCents
			r, ok := charges[l.Provider][c.ID]
			switch {
			case !ok:
				rep.add(finding(KindLedgerMismatch, l.Provider+":"+c.ID, "%s holds charge %s of order %s (key %s, %d %s) that payments do not record",
					l.Provider, c.ID, id, c.IdempotencyKey, c.AmountCents, c.Currency))
			case r.amount != c.AmountCents:
				rep.add(finding(KindLedgerMismatch, l.Provider+":"+c.ID, "%s charge %s of order %s: %d at the provider, %d recorded",
					l.Provider, c.ID, id, c.AmountCents, r.amount))
			}
		}
		for _, ref := range slices.Sorted(maps.Keys(charges[l.Provider])) {
			r := charges[l.Provider][ref]
			if held[ref] || r.at.Before(since) || !until.IsZero() && !r.at.Before(until) {
				continue
			}
			compared[r.order] = true
			rep.Checked++
			rep.add(finding(KindLedgerMismatch, l.Provider+":"+ref, "payments record charge %s of order %s on %s (key %s, %d), which %s does not list",
				ref, r.order, l.Provider, r.key, r.amount, l.Provider))
		}
		for _, id := range slices.Sorted(maps.Keys(compared)) {
			at, ours := atProvider[id], refunded[l.Provider+"/"+id]
			if at != ours {
				rep.add(finding(KindLedgerMismatch, l.Provider+":"+id, "order %s on %s: refunded %d at the provider, %d recorded", id, l.Provider, at, ours))
			}
		}
	}
	return rep, nil
}
