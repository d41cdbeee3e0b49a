package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/internal/pii"
)

// AddressAAD is what an order's sealed shipping address is bound to: the
// order and the field, so a value copied to another order, or into the
// e-mail's column, does not open.
func AddressAAD(orderID string) string { return orderID + "/shipping_address" }

// sealAddress seals a as JSON for the order; nil for no address.
func sealAddress(keys *pii.Keyring, orderID string, a *orderflow.Address) ([]byte, error) {
	if a == nil {
		return nil, nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode shipping address of %s: %w", orderID, err)
	}
	return keys.Seal(b, []byte(AddressAAD(orderID))), nil
}

// ShippingAddress reads and opens an order's shipping address, through q (the
// pool, or the caller's transaction). It returns nil, nil when the order has
// none: placed before addresses were taken, a synthetic order, or erased
// (DELETE /v1/customers/{id}/pii); ErrNoOrder when there is no such order. A
// value sealed with a key the keyring lacks fails with pii.ErrUnknownKey.
func ShippingAddress(ctx context.Context, q activities.Querier, keys *pii.Keyring, orderID string) (*orderflow.Address, error) {
	var sealed []byte
	err := q.QueryRow(ctx, `SELECT shipping_address_enc FROM orders WHERE order_id = $1`, orderID).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("shipping address of %s: %w", orderID, ErrNoOrder)
	}
	if err != nil {
		return nil, fmt.Errorf("read shipping address of %s: %w", orderID, err)
	}
	if sealed == nil {
		return nil, nil
	}
	if keys == nil {
		return nil, fmt.Errorf("open shipping address of %s: %w", orderID, pii.ErrNoKeys)
	}
	plain, err := keys.Open(sealed, []byte(AddressAAD(orderID)))
	if err != nil {
		return nil, fmt.Errorf("open shipping address of %s: %w", orderID, err)
	}
	var a orderflow.Address
	if err := json.Unmarshal(plain, &a); err != nil {
		return nil, fmt.Errorf("decode shipping address of %s: %w", orderID, err)
	}
	return &a, nil
}

// ErrNoOrder is returned for an order that does not exist.
var ErrNoOrder = errors.New("no such order")
