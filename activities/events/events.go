// Package events is orderflow's event stream: a transactional outbox of
// business events (event_outbox) written in the same transactions as the
// state changes they announce, a Relay that publishes it to NATS JetStream at
// least once, deduplicated by message id and in order per order, and the
// Analytics consumer that turns the stream into business metrics.
//
// Most events need no code: migration 0013 writes them from the append-only
// logs that already record each state change (order_status_history,
// payment_transactions, inventory_events), so they commit with it, exactly
// once per change. Enqueue is for state changes that have no such log row,
// such as a shipment handed to the carrier. docs/events.md is the contract:
// subjects, envelope, the versioned schema of each type.
package events

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Event types, which are also the NATS subjects they are published on. A
// stream per family holds them (Streams).
const (
	OrderCreated     = "order.created"
	OrderConfirmed   = "order.confirmed"
	OrderFailed      = "order.failed"
	OrderCancelled   = "order.cancelled"
	OrderShipped     = "order.shipped"
	OrderDelivered   = "order.delivered"
	OrderDisputed    = "order.disputed"
	PaymentProcessed = "payment.processed"
	PaymentRefunded  = "payment.refunded"
	InventoryUpdated = "inventory.updated"
	AnalyticsEvents  = "analytics.events"
)

// Event is one business event on its way into the outbox.
type Event struct {
	// Type is one of the constants above: the subject it is published on.
	Type string
	// Version is the version of Type's schema that Data follows
	// (schemas/<type>.v<version>.json); zero means 1.
	Version int
	// OrderID is the order the event is about, if any: the event is
	// published after every earlier event of that order, and carries the
	// order's region and acceptance time.
	OrderID string
	// Key names the state change, so that a retried writer adds no second
	// event: the outbox keeps one event per key. Empty means Type:OrderID,
	// one such event per order; a change that can happen several times to
	// one order (one per shipment) needs a key of its own, such as
	// "order.shipped:<shipment id>".
	Key string
	// Data is the type's payload, marshalled to JSON.
	Data any
}

// ErrInvalid is returned for an event that cannot be written: a type no
// stream holds, no key and no order, or a payload that does not marshal to a JSON object.
var ErrInvalid = errors.New("invalid event")

// qEnqueue writes an event into the outbox, once per key. The region and
// partition come from the order when there is one; an event of no order goes
// to the relays' shared scope (region ”) in a partition of its own key.
const qEnqueue = `INSERT INTO event_outbox (type, version, key, order_id, partition, region, payload)
	SELECT $1, $2, $3, o.order_id, coalesce(o.order_id::text, $3), coalesce(o.region, ''), $5
	FROM (SELECT NULLIF($4, '')::uuid AS id) arg LEFT JOIN orders o ON o.order_id = arg.id
	ON CONFLICT (key) DO NOTHING`

// Enqueue puts ev into the event outbox inside tx, the transaction that
// makes the change it announces, so the event exists exactly when the change
// does; a second call with the same key adds nothing. An event of an order
// that does not exist (yet, in tx) is written as an event of no order.
func Enqueue(ctx context.Context, tx pgx.Tx, ev Event) error {
	if ev.Version == 0 {
		ev.Version = 1
	}
	if ev.Key == "" && ev.OrderID != "" {
		ev.Key = ev.Type + ":" + ev.OrderID
	}
	if _, known := StreamOf(ev.Type); !known || ev.Key == "" {
		return fmt.Errorf("enqueue event %q: %w: needs a known type and a key or an order", ev.Type, ErrInvalid)
	}
	data, err := json.Marshal(ev.Data)
	if err != nil || len(data) == 0 || data[0] != '{' {
		return fmt.Errorf("enqueue event %s: %w: data must marshal to a JSON object", ev.Type, ErrInvalid)
	}
	if _, err := tx.Exec(ctx, qEnqueue, ev.Type, ev.Version, ev.Key, ev.OrderID, data); err != nil {
		return fmt.Errorf("enqueue event %s: %w", ev.Type, err)
	}
	return nil
}

// Envelope is what a subscriber receives: the event's identity and order
// around its type's payload. ID is also the message's Nats-Msg-Id, so a
// consumer that dedupes keeps one copy of each event.
type Envelope struct {
	// ID is the outbox row id, as a decimal string.
	ID      string `json:"id"`
	Type    string `json:"type"`
	Version int    `json:"version"`
	// OccurredAt is when the change committed its outbox row.
	OccurredAt time.Time `json:"occurred_at"`
	Region     string    `json:"region"`
	// OrderID and OrderAcceptedAt are set for an event of an order.
	OrderID         string          `json:"order_id,omitempty"`
	OrderAcceptedAt *time.Time      `json:"order_accepted_at,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// Schemas holds the JSON Schema of each event type's envelope, one file per
// version: schemas/<type>.v<version>.json (docs/events.md).
//
//go:embed schemas/*.json
var Schemas embed.FS
