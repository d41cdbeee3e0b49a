// Package fulfillment is the area of an order's life after CONFIRMED: its
// lines allocated to shipments (one per warehouse holding the stock), each
// handed to the carrier, followed through the carrier's events, its stock
// committed when it leaves the warehouse, and withdrawn when the order is
// cancelled before anything left. The Order saga drives it
// (docs/fulfillment.md); the gateway records the carrier's signed events
// through the Store and hands them to the saga.
package fulfillment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/activity"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/events"
	"github.com/orderflow/orderflow/activities/notify"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/internal/pii"
)

// Activities allocate, hand over, advance and withdraw an order's shipments.
type Activities struct {
	DB    *pgxpool.Pool
	Cache *redis.Client
	// Carrier takes the shipments (CARRIER_URL); nil means none is
	// configured: shipments wait for the carrier's events all the same.
	Carrier *Carrier
	// PII opens the orders' sealed shipping addresses for the carrier.
	PII *pii.Keyring
}

// Shipment is one shipment as the saga keeps it.
type Shipment struct {
	ShipmentID     string           `json:"shipment_id"`
	Warehouse      string           `json:"warehouse"`
	Items          []orderflow.Item `json:"items"`
	Status         string           `json:"status"`
	TrackingNumber string           `json:"tracking_number,omitempty"`
	ValueCents     int64            `json:"value_cents"`
}

// StartInput is a paid order to confirm and fulfil.
type StartInput struct {
	OrderID string           `json:"order_id"`
	Lines   []orderflow.Line `json:"lines"`
}

// StartResult is the order's shipments.
type StartResult struct {
	Shipments []Shipment `json:"shipments"`
}

// StartFulfillment confirms a paid order and allocates it, in one transaction: the
// order becomes CONFIRMED (its confirmation message queued), its lines are
// allocated to warehouses (catalog.Allocate) as shipments, and it becomes
// FULFILLING. Its stock stays reserved until each shipment leaves. A retry
// finds the shipments and returns them. An order that holds no stock is a
// non-retryable InvalidOrder.
func (a *Activities) StartFulfillment(ctx context.Context, in StartInput) (StartResult, error) {
	var res StartResult
	_, err := activities.Commit(ctx, a.DB, a.Cache, in.OrderID, func(tx pgx.Tx) ([]orderflow.Item, error) {
		existing, err := shipments(ctx, tx, in.OrderID)
		if err != nil || len(existing) > 0 {
			res.Shipments = existing
			return nil, err
		}
		var held bool
		const qHeld = `SELECT EXISTS (SELECT 1 FROM reservations WHERE order_id = $1 AND status = 'held')`
		if err := tx.QueryRow(ctx, qHeld, in.OrderID).Scan(&held); err != nil {
			return nil, fmt.Errorf("check reservations: %w", err)
		}
		if !held {
			return nil, activities.Business(orderflow.InvalidOrder, "order "+in.OrderID+" holds no stock to fulfil")
		}
		if err := chaosFault(ctx, tx, in.OrderID, "confirm"); err != nil {
			return nil, err
		}
		if err := orders.RecordStatus(ctx, tx, in.OrderID, orderflow.StatusConfirmed, ""); err != nil {
			return nil, err
		}
		if err := chaosFault(ctx, tx, in.OrderID, "notify"); err != nil {
			return nil, err
		}
		if err := notify.Enqueue(ctx, tx, in.OrderID, notify.OrderConfirmed, "Your order is confirmed"); err != nil {
			return nil, err
		}
		items := make([]orderflow.Item, len(in.Lines))
		price := map[string]int64{}
		for i, l := range in.Lines {
			items[i], price[l.SKU] = orderflow.Item{SKU: l.SKU, Quantity: l.Quantity}, l.UnitPriceCents
		}
		allocs, err := catalog.Allocate(ctx, tx, items)
		if err != nil {
			return nil, err
		}
		for _, al := range allocs {
			s := Shipment{ShipmentID: uuid.NewString(), Warehouse: al.Warehouse, Items: al.Items, Status: ShipmentAllocated}
			skus, qtys := make([]string, len(al.Items)), make([]int32, len(al.Items))
			for i, it := range al.Items {
				skus[i], qtys[i] = it.SKU, int32(it.Quantity)
				s.ValueCents += int64(it.Quantity) * price[it.SKU]
			}
			const qs = `INSERT INTO shipments (shipment_id, order_id, warehouse, status, value_cents) VALUES ($1, $2, $3, $4, $5)`
			if _, err := tx.Exec(ctx, qs, s.ShipmentID, in.OrderID, s.Warehouse, s.Status, s.ValueCents); err != nil {
				return nil, fmt.Errorf("insert shipment: %w", err)
			}
			const qi = `INSERT INTO shipment_items (shipment_id, sku, quantity) SELECT $1, sku, qty FROM unnest($2::text[], $3::int[]) AS t(sku, qty)`
			if _, err := tx.Exec(ctx, qi, s.ShipmentID, skus, qtys); err != nil {
				return nil, fmt.Errorf("insert shipment items: %w", err)
			}
			res.Shipments = append(res.Shipments, s)
		}
		return nil, orders.RecordStatus(ctx, tx, in.OrderID, orderflow.StatusFulfilling, "")
	})
	if err != nil {
		return StartResult{}, activities.Wrap(err, "fulfil %s", in.OrderID)
	}
	return res, nil
}

// shipments reads an order's shipments that are not cancelled, with their
// items, in creation order.
func shipments(ctx context.Context, q activities.Querier, orderID string) ([]Shipment, error) {
	const qs = `SELECT s.shipment_id::text, s.warehouse, s.status, coalesce(s.tracking_number, ''), s.value_cents,
			array_agg(i.sku ORDER BY i.sku), array_agg(i.quantity ORDER BY i.sku)
		FROM shipments s JOIN shipment_items i USING (shipment_id)
		WHERE s.order_id = $1 AND s.status <> 'cancelled'
		GROUP BY s.shipment_id ORDER BY min(s.created_at), s.warehouse`
	rows, err := q.Query(ctx, qs, orderID)
	if err != nil {
		return nil, fmt.Errorf("load shipments of %s: %w", orderID, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Shipment, error) {
		var s Shipment
		var skus []string
		var qtys []int32
		if err := row.Scan(&s.ShipmentID, &s.Warehouse, &s.Status, &s.TrackingNumber, &s.ValueCents, &skus, &qtys); err != nil {
			return s, err
		}
		for i := range skus {
			s.Items = append(s.Items, orderflow.Item{SKU: skus[i], Quantity: int(qtys[i])})
		}
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("load shipments of %s: %w", orderID, err)
	}
	return list, nil
}

// HandoffInput is a shipment to hand to the carrier.
type HandoffInput struct {
	OrderID  string   `json:"order_id"`
	Shipment Shipment `json:"shipment"`
}

// HandoffResult is the carrier's tracking number, "" without a carrier.
type HandoffResult struct {
	TrackingNumber string `json:"tracking_number,omitempty"`
}

// HandOffShipment hands a shipment to the carrier and marks it handed_over with the
// carrier's tracking number. The carrier dedupes by shipment id, so a retry
// hands nothing twice; a shipment cancelled meanwhile is not handed over.
// Without a carrier it does nothing. A carrier that cannot be reached is a
// plain error: the saga retries it while the SLA runs.
func (a *Activities) HandOffShipment(ctx context.Context, in HandoffInput) (HandoffResult, error) {
	if a.Carrier == nil {
		return HandoffResult{}, nil
	}
	var status string
	const q = `SELECT status FROM shipments WHERE shipment_id = $1`
	if err := a.DB.QueryRow(ctx, q, in.Shipment.ShipmentID).Scan(&status); err != nil {
		return HandoffResult{}, fmt.Errorf("handoff %s: %w", in.Shipment.ShipmentID, err)
	}
	if status == ShipmentCancelled {
		return HandoffResult{}, nil
	}
	// The address is sealed at rest; it is opened here, for the carrier
	// only, and never enters the workflow's history.
	address, err := orders.ShippingAddress(ctx, a.DB, a.PII, in.OrderID)
	if err != nil {
		return HandoffResult{}, fmt.Errorf("handoff %s: %w", in.Shipment.ShipmentID, err)
	}
	h, err := a.Carrier.Hand(ctx, Handover{ShipmentID: in.Shipment.ShipmentID, OrderID: in.OrderID,
		Warehouse: in.Shipment.Warehouse, Items: in.Shipment.Items, Address: address})
	if err != nil {
		return HandoffResult{}, fmt.Errorf("handoff %s: %w", in.Shipment.ShipmentID, err)
	}
	const qu = `UPDATE shipments SET status = 'handed_over', tracking_number = NULLIF($2, ''), updated_at = now()
		WHERE shipment_id = $1 AND status = 'allocated'`
	if _, err := a.DB.Exec(ctx, qu, in.Shipment.ShipmentID, h.TrackingNumber); err != nil {
		return HandoffResult{}, fmt.Errorf("handoff %s: record: %w", in.Shipment.ShipmentID, err)
	}
	activity.GetLogger(ctx).Info("shipment handed to the carrier", "order_id", in.OrderID,
		"shipment_id", in.Shipment.ShipmentID, "tracking_number", h.TrackingNumber)
	return HandoffResult{TrackingNumber: h.TrackingNumber}, nil
}

// AdvanceInput is a carrier event for one of the order's shipments.
type AdvanceInput struct {
	OrderID        string    `json:"order_id"`
	ShipmentID     string    `json:"shipment_id"`
	Type           string    `json:"type"`
	At             time.Time `json:"at"`
	TrackingNumber string    `json:"tracking_number,omitempty"`
	// Overdue: the shipment SLA passed; the order stays
	// FULFILLMENT_OVERDUE while any shipment has not left.
	Overdue bool `json:"overdue,omitempty"`
}

// AdvanceResult is the shipment's status after the event and the order's.
type AdvanceResult struct {
	ShipmentStatus string `json:"shipment_status"`
	OrderStatus    string `json:"order_status"`
}

// AdvanceShipment applies a carrier event to a shipment, in one transaction. The
// shipment moves only forward (Rank): an event that does not rank above its
// status changes nothing. The first event that says it left its warehouse
// (picked_up, or a later one that came first) commits its stock
// (catalog.Ship). The order's status follows its shipments (OrderStatus)
// and is recorded, with the customer's shipped or delivered message; an
// order whose shipments were all lost is left to the saga, which fails it.
func (a *Activities) AdvanceShipment(ctx context.Context, in AdvanceInput) (AdvanceResult, error) {
	var res AdvanceResult
	_, err := activities.Commit(ctx, a.DB, a.Cache, in.OrderID, func(tx pgx.Tx) ([]orderflow.Item, error) {
		var cur, warehouse, orderStatus string
		const q = `SELECT s.status, s.warehouse, o.status FROM shipments s JOIN orders o USING (order_id)
			WHERE s.shipment_id = $1 AND s.order_id = $2 FOR UPDATE OF s`
		err := tx.QueryRow(ctx, q, in.ShipmentID, in.OrderID).Scan(&cur, &warehouse, &orderStatus)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, activities.Business(orderflow.InvalidOrder, "order "+in.OrderID+" has no shipment "+in.ShipmentID)
		}
		if err != nil {
			return nil, fmt.Errorf("lock shipment: %w", err)
		}
		res.ShipmentStatus = cur
		var moved []orderflow.Item
		if Rank(in.Type) > Rank(cur) && cur != ShipmentCancelled {
			if !Left(cur) && Left(in.Type) {
				list, err := shipments(ctx, tx, in.OrderID)
				if err != nil {
					return nil, err
				}
				for _, s := range list {
					if s.ShipmentID == in.ShipmentID {
						moved = s.Items
					}
				}
				if err := catalog.Ship(ctx, tx, in.OrderID, catalog.Allocation{Warehouse: warehouse, Items: moved}); err != nil {
					return nil, err
				}
				// One order.shipped event per shipment that leaves its warehouse.
				if err := events.Enqueue(ctx, tx, events.Event{Type: events.OrderShipped, OrderID: in.OrderID,
					Key: events.OrderShipped + ":" + in.ShipmentID, Data: map[string]any{"order_id": in.OrderID, "shipment_id": in.ShipmentID,
						"warehouse": warehouse, "tracking_number": in.TrackingNumber, "shipped_at": in.At.UTC(), "items": moved}}); err != nil {
					return nil, err
				}
			}
			const qu = `UPDATE shipments SET status = $2, tracking_number = coalesce(NULLIF($3, ''), tracking_number),
					left_at = CASE WHEN left_at IS NULL AND $2 IN ('picked_up', 'in_transit', 'delivered', 'lost') THEN $4 ELSE left_at END,
					delivered_at = CASE WHEN $2 = 'delivered' THEN $4 ELSE delivered_at END, updated_at = now()
				WHERE shipment_id = $1`
			if _, err := tx.Exec(ctx, qu, in.ShipmentID, in.Type, in.TrackingNumber, in.At); err != nil {
				return nil, fmt.Errorf("advance shipment: %w", err)
			}
			res.ShipmentStatus = in.Type
		}
		list, err := shipments(ctx, tx, in.OrderID)
		if err != nil {
			return nil, err
		}
		statuses := make([]string, len(list))
		for i, s := range list {
			statuses[i] = s.Status
		}
		res.OrderStatus = OrderStatus(statuses, in.Overdue)
		if res.OrderStatus == orderStatus || res.OrderStatus == orderflow.StatusFailed {
			return moved, nil
		}
		if err := orders.RecordStatus(ctx, tx, in.OrderID, res.OrderStatus, ""); err != nil {
			return nil, err
		}
		switch res.OrderStatus {
		case orderflow.StatusPartiallyShipped, orderflow.StatusShipped:
			err = notify.Enqueue(ctx, tx, in.OrderID, notify.OrderShipped, "Your order has shipped")
		case orderflow.StatusDelivered:
			err = notify.Enqueue(ctx, tx, in.OrderID, notify.OrderDelivered, "Your order was delivered")
			if err == nil { // one order.delivered event per order, when its last shipment arrives
				err = events.Enqueue(ctx, tx, events.Event{Type: events.OrderDelivered, OrderID: in.OrderID,
					Data: map[string]any{"order_id": in.OrderID, "delivered_at": in.At.UTC()}})
			}
		}
		return moved, err
	})
	if err != nil {
		return AdvanceResult{}, activities.Wrap(err, "advance shipment %s", in.ShipmentID)
	}
	return res, nil
}

// OrderStatus is the status of an order whose shipments (cancelled ones
// left out) have these statuses: DELIVERED once every one is delivered or
// lost with at least one delivered, FAILED when all were lost,
// FULFILLMENT_OVERDUE past the SLA while one has not left, SHIPPED when all
// left, PARTIALLY_SHIPPED when some did, FULFILLING before.
func OrderStatus(statuses []string, overdue bool) string {
	var left, delivered, final int
	for _, s := range statuses {
		if Left(s) {
			left++
		}
		if s == ShipmentDelivered {
			delivered++
		}
		if Final(s) {
			final++
		}
	}
	n := len(statuses)
	switch {
	case n > 0 && final == n && delivered > 0:
		return orderflow.StatusDelivered
	case n > 0 && final == n:
		return orderflow.StatusFailed
	case overdue && left < n:
		return orderflow.StatusFulfillmentOverdue
	case n > 0 && left == n:
		return orderflow.StatusShipped
	case left > 0:
		return orderflow.StatusPartiallyShipped
	}
	return orderflow.StatusFulfilling
}

// CancelShipments withdraws an order's shipments that have not left: the carrier is
// asked to give each back, then, in one transaction, each is cancelled,
// its warehouse promise withdrawn (catalog.Deallocate) and the customer's
// cancellation message queued. Releasing the stock and refunding are the
// saga's other compensations. An order without shipments is a no-op, so
// the saga may run it whether or not Start got as far as the database. A
// carrier that says it has picked one up is logged for an operator: the
// saga accepted the cancel before any pickup reached it.
func (a *Activities) CancelShipments(ctx context.Context, in orderflow.OrderRef) error {
	list, err := shipments(ctx, a.DB, in.OrderID)
	if err != nil {
		return fmt.Errorf("cancel shipments of %s: %w", in.OrderID, err)
	}
	for _, s := range list {
		if Left(s.Status) || a.Carrier == nil {
			continue
		}
		err := a.Carrier.Withdraw(ctx, s.ShipmentID)
		if errors.Is(err, ErrAlreadyPickedUp) {
			activity.GetLogger(ctx).Error("carrier picked up a shipment of a cancelled order; recover it by a return",
				"order_id", in.OrderID, "shipment_id", s.ShipmentID)
			continue
		}
		if err != nil {
			return fmt.Errorf("cancel shipments of %s: %w", in.OrderID, err)
		}
	}
	_, err = activities.Commit(ctx, a.DB, a.Cache, in.OrderID, func(tx pgx.Tx) ([]orderflow.Item, error) {
		const q = `UPDATE shipments SET status = 'cancelled', updated_at = now()
			WHERE order_id = $1 AND status IN ('allocated', 'handed_over') RETURNING shipment_id::text, warehouse`
		rows, err := tx.Query(ctx, q, in.OrderID)
		if err != nil {
			return nil, fmt.Errorf("cancel shipments: %w", err)
		}
		type cancelled struct{ ID, Warehouse string }
		list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[cancelled])
		if err != nil {
			return nil, fmt.Errorf("cancel shipments: %w", err)
		}
		for _, c := range list {
			rows, err := tx.Query(ctx, `SELECT sku, quantity FROM shipment_items WHERE shipment_id = $1 ORDER BY sku`, c.ID)
			if err != nil {
				return nil, fmt.Errorf("items of %s: %w", c.ID, err)
			}
			items, err := pgx.CollectRows(rows, pgx.RowToStructByPos[orderflow.Item])
			if err != nil {
				return nil, fmt.Errorf("items of %s: %w", c.ID, err)
			}
			if err := catalog.Deallocate(ctx, tx, catalog.Allocation{Warehouse: c.Warehouse, Items: items}); err != nil {
				return nil, err
			}
		}
		if len(list) == 0 {
			return nil, nil
		}
		return nil, notify.Enqueue(ctx, tx, in.OrderID, notify.OrderCancelled, "Your order is cancelled")
	})
	if err != nil {
		return activities.Wrap(err, "cancel shipments of %s", in.OrderID)
	}
	return nil
}
