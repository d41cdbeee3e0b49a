package fulfillment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/activities/fulfillment/wire"
)

// Store is the fulfillment area's SQL for the gateway: which order a
// shipment belongs to, the carrier's events recorded once each, and an
// order's shipments.
type Store struct {
	DB *pgxpool.Pool
}

// ShipmentOrder returns the order of a shipment, "" when there is no such
// shipment.
func (s Store) ShipmentOrder(ctx context.Context, shipmentID string) (string, error) {
	var orderID string
	err := s.DB.QueryRow(ctx, `SELECT order_id::text FROM shipments WHERE shipment_id = $1`, shipmentID).Scan(&orderID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("load shipment %s: %w", shipmentID, err)
	}
	return orderID, nil
}

// RecordEvent stores a carrier event once per event id. It reports false
// when the id was recorded before (a re-sent event), changing nothing.
func (s Store) RecordEvent(ctx context.Context, shipmentID string, e wire.Event) (bool, error) {
	const q = `INSERT INTO carrier_events (event_id, shipment_id, type, at, tracking_number)
		VALUES ($1, $2, $3, $4, NULLIF($5, '')) ON CONFLICT (event_id) DO NOTHING`
	tag, err := s.DB.Exec(ctx, q, e.EventID, shipmentID, e.Type, e.At, e.TrackingNumber)
	if err != nil {
		return false, fmt.Errorf("record carrier event %s: %w", e.EventID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ShipmentRecord is a shipment as the API shows it.
type ShipmentRecord struct {
	Shipment
	LeftAt      *time.Time
	DeliveredAt *time.Time
}

// Shipments returns an order's shipments that are not cancelled.
func (s Store) Shipments(ctx context.Context, orderID string) ([]ShipmentRecord, error) {
	list, err := shipments(ctx, s.DB, orderID)
	if err != nil {
		return nil, err
	}
	out := make([]ShipmentRecord, len(list))
	for i, sh := range list {
		out[i].Shipment = sh
		const q = `SELECT left_at, delivered_at FROM shipments WHERE shipment_id = $1`
		if err := s.DB.QueryRow(ctx, q, sh.ShipmentID).Scan(&out[i].LeftAt, &out[i].DeliveredAt); err != nil {
			return nil, fmt.Errorf("load shipment %s: %w", sh.ShipmentID, err)
		}
	}
	return out, nil
}
