package payment

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stripe/stripe-go/v82"

	"github.com/orderflow/orderflow/internal/db"
)

// Metadata keys orderflow puts on the charges and payment intents it makes,
// so that their webhook events name the order and the charge key.
const (
	MetadataOrderID   = "order_id"
	MetadataChargeKey = "charge_key"
)

// MapEvent maps a verified event of Stripe's shape (Stripe's own, or
// paysim's, which signs and shapes its events the same way) to what it
// means to orderflow. An event orderflow has no use for, or of a charge
// orderflow did not make (without its metadata), is EventIgnored; a known
// kind that lacks what orderflow needs to act on it is an error naming the
// missing field.
func MapEvent(provider string, ev stripe.Event) (ProviderEvent, error) {
	out := ProviderEvent{Provider: provider, EventID: ev.ID, Type: string(ev.Type), Kind: EventIgnored}
	var obj map[string]any
	if ev.Data != nil {
		obj = ev.Data.Object
	}
	meta, _ := obj["metadata"].(map[string]any)
	out.OrderID, out.ChargeKey = str(meta, MetadataOrderID), str(meta, MetadataChargeKey)
	out.AmountCents, out.Currency = integer(obj, "amount"), strings.ToUpper(str(obj, "currency"))
	switch ev.Type {
	case "payment_intent.succeeded", "charge.succeeded", "payment_intent.amount_capturable_updated":
		// (the last: an authorization, capture_method=manual, now holds)
		out.Kind, out.ChargeID = EventSucceeded, str(obj, "id")
	case "payment_intent.payment_failed", "charge.failed":
		out.Kind, out.ChargeID = EventFailed, str(obj, "id")
		out.Reason = str(obj, "failure_code")
		if e, ok := obj["last_payment_error"].(map[string]any); ok && out.Reason == "" {
			out.Reason = str(e, "code")
		}
		if out.Reason == "" {
			out.Reason = "payment_failed"
		}
	case "charge.dispute.created", "charge.dispute.funds_withdrawn":
		out.Kind, out.DisputeID, out.ChargeID, out.Reason = EventDispute, str(obj, "id"), str(obj, "charge"), str(obj, "reason")
		// A dispute's order is the one orderflow recorded the charge for,
		// whatever the dispute's own metadata says.
		out.OrderID, out.ChargeKey = "", ""
		if out.DisputeID == "" || out.ChargeID == "" {
			return out, errors.New("a dispute event needs data.object.id and data.object.charge")
		}
		return out, nil
	default:
		return out, nil
	}
	if out.ChargeKey == "" || out.OrderID == "" {
		// Not a charge orderflow made (it puts both on each of its own).
		out.Kind = EventIgnored
		return out, nil
	}
	if out.ChargeID == "" {
		return out, fmt.Errorf("a %s event needs data.object.id", ev.Type)
	}
	if _, err := uuid.Parse(out.OrderID); err != nil {
		return out, fmt.Errorf("metadata %s is not an order id: %w", MetadataOrderID, err)
	}
	return out, nil
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func integer(m map[string]any, k string) int64 {
	f, _ := m[k].(float64) // encoding/json's number
	return int64(f)
}

// Store is the payment area's SQL the gateway uses for provider webhooks.
type Store struct {
	DB *pgxpool.Pool
}

// ChargeOrder returns the order a provider's charge belongs to and the
// charge's key, "" when orderflow holds no such charge.
func (s Store) ChargeOrder(ctx context.Context, provider, chargeID string) (orderID, key string, err error) {
	const q = `SELECT order_id::text, idempotency_key FROM payments WHERE provider = $1 AND charge_id = $2
		UNION ALL SELECT order_id::text, charge_key FROM payment_pending WHERE provider = $1 AND charge_id = $2 LIMIT 1`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	err = s.DB.QueryRow(ctx, q, provider, chargeID).Scan(&orderID, &key)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("charge %s on %s: %w", chargeID, provider, err)
	}
	return orderID, key, nil
}

// EventSeen reports whether the provider's event was already received.
func (s Store) EventSeen(ctx context.Context, provider, eventID string) (bool, error) {
	const q = `SELECT EXISTS (SELECT 1 FROM payment_provider_events WHERE provider = $1 AND event_id = $2)`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	var seen bool
	if err := s.DB.QueryRow(ctx, q, provider, eventID).Scan(&seen); err != nil {
		return false, fmt.Errorf("event %s of %s: %w", eventID, provider, err)
	}
	return seen, nil
}

// RecordEvent records that the provider's event was received and handed
// over; it reports false when it was already on record.
func (s Store) RecordEvent(ctx context.Context, ev ProviderEvent) (bool, error) {
	const q = `INSERT INTO payment_provider_events (provider, event_id, type, order_id) VALUES ($1, $2, $3, NULLIF($4, '')::uuid)
		ON CONFLICT (provider, event_id) DO NOTHING`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	tag, err := s.DB.Exec(ctx, q, ev.Provider, ev.EventID, ev.Type, ev.OrderID)
	if err != nil {
		return false, fmt.Errorf("record event %s of %s: %w", ev.EventID, ev.Provider, err)
	}
	return tag.RowsAffected() == 1, nil
}
