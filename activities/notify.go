package activities

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/internal/db"
)

// Notification sends customer messages. For now a message is a row in the
// notifications table (the outbox a mail sender will drain).
type Notification struct {
	DB *pgxpool.Pool
}

// NotifyInput is one message about an order.
type NotifyInput struct {
	OrderID   string `json:"order_id"`
	Kind      string `json:"kind"`
	Recipient string `json:"recipient"`
	Subject   string `json:"subject"`
	Body      string `json:"body"`
}

// Send records the message once per (order, kind); a retry is a no-op.
func (n *Notification) Send(ctx context.Context, in NotifyInput) error {
	const q = `INSERT INTO notifications (order_id, kind, channel, recipient, subject, body)
		VALUES ($1, $2, 'email', $3, $4, $5) ON CONFLICT (order_id, kind) DO NOTHING`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	if _, err := n.DB.Exec(ctx, q, in.OrderID, in.Kind, in.Recipient, in.Subject, in.Body); err != nil {
		return fmt.Errorf("notify %s %s: %w", in.Kind, in.OrderID, err)
	}
	return nil
}
