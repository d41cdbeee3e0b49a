package orders

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/pii"
)

// Reencrypted counts the rows EncryptPII rewrote, and those it could not
// open.
type Reencrypted struct {
	Orders        int
	Notifications int
	// Unreadable counts values sealed with a key the keyring does not hold
	// (or damaged); they are left as they are. Unreadable is the first such
	// failure, naming the key id.
	Unreadable    int
	UnreadableErr error
}

// piiBatch is how many rows EncryptPII rewrites per round trip.
const piiBatch = 500

// EncryptPII brings every stored e-mail and shipping address under the
// keyring's active key:
// plaintext left by releases before migration 0006 (or by a worker of the
// old release during a rolling upgrade) is encrypted and cleared, and
// values sealed with an older key are re-sealed, so a retired key can then
// be dropped. `orderflow migrate` runs it after the SQL migrations. Each
// row is rewritten only if it still holds what was read, so an erasure
// running at the same time is never undone. region limits the work to one
// region's rows ("" for all), so regions sharing a database can rotate on
// their own schedules. A value sealed with a key the keyring does not hold
// is skipped and counted (its key was dropped too early: restore it and run
// again); EncryptPII fails on database errors, or if there is work and keys
// is nil.
func EncryptPII(ctx context.Context, pool *pgxpool.Pool, keys *pii.Keyring, region string) (Reencrypted, error) {
	var done Reencrypted
	active := ""
	if keys != nil {
		active = keys.Active()
	}
	// A value's key id is bytes 3.. of its header (internal/pii).
	const (
		qOrders = `SELECT order_id::text, email, email_enc, shipping_address_enc FROM orders
			WHERE order_id > $2::text::uuid AND ($4 = '' OR region = $4) AND (email IS NOT NULL
			   OR (email_enc IS NOT NULL AND substring(email_enc FROM 3 FOR get_byte(email_enc, 1)) <> convert_to($1, 'UTF8'))
			   OR (shipping_address_enc IS NOT NULL
			       AND substring(shipping_address_enc FROM 3 FOR get_byte(shipping_address_enc, 1)) <> convert_to($1, 'UTF8')))
			ORDER BY order_id LIMIT $3`
		uOrders = `UPDATE orders SET email = NULL, email_enc = $2, shipping_address_enc = $5
			WHERE order_id = $1::text::uuid AND email IS NOT DISTINCT FROM $3 AND email_enc IS NOT DISTINCT FROM $4
			  AND shipping_address_enc IS NOT DISTINCT FROM $6`
		qNotes = `SELECT id::text, order_id::text, recipient, recipient_enc FROM notifications
			WHERE id > $2::text::bigint AND ($4 = '' OR region = $4) AND (recipient IS NOT NULL
			   OR (recipient_enc IS NOT NULL AND substring(recipient_enc FROM 3 FOR get_byte(recipient_enc, 1)) <> convert_to($1, 'UTF8')))
			ORDER BY id LIMIT $3`
		uNotes = `UPDATE notifications SET recipient = NULL, recipient_enc = $2
			WHERE id = $1::text::bigint AND recipient IS NOT DISTINCT FROM $3 AND recipient_enc IS NOT DISTINCT FROM $4`
	)
	for _, t := range []struct {
		name, start string
		count       *int
	}{
		{"orders", "00000000-0000-0000-0000-000000000000", &done.Orders},
		{"notifications", "0", &done.Notifications},
	} {
		// Each table's statements are named at their call, so that every
		// SQL text stays constant (internal/db's SQL lint).
		orders := t.name == "orders"
		after := t.start
		for {
			var rows pgx.Rows
			var err error
			if orders {
				rows, err = pool.Query(ctx, qOrders, active, after, piiBatch, region)
			} else {
				rows, err = pool.Query(ctx, qNotes, active, after, piiBatch, region)
			}
			if err != nil {
				return done, fmt.Errorf("find %s to encrypt: %w", t.name, err)
			}
			type row struct {
				key, aad string
				plain    *string
				sealed   []byte
				address  []byte // an order's sealed shipping address
			}
			var batch []row
			for rows.Next() {
				var r row
				var dest []any
				if orders {
					dest = []any{&r.key, &r.plain, &r.sealed, &r.address}
				} else {
					dest = []any{&r.key, &r.aad, &r.plain, &r.sealed}
				}
				if err := rows.Scan(dest...); err != nil {
					rows.Close()
					return done, fmt.Errorf("read %s to encrypt: %w", t.name, err)
				}
				if orders {
					r.aad = r.key
				}
				batch = append(batch, r)
			}
			if err := rows.Err(); err != nil {
				return done, fmt.Errorf("read %s to encrypt: %w", t.name, err)
			}
			if len(batch) == 0 {
				break
			}
			if keys == nil {
				return done, fmt.Errorf("%s hold personal data to encrypt: %w", t.name, pii.ErrNoKeys)
			}
			b := &pgx.Batch{}
			for _, r := range batch {
				plain, address, oerr := "", []byte(nil), error(nil)
				if r.plain != nil {
					plain = *r.plain
				} else if r.sealed != nil {
					plain, oerr = keys.OpenString(r.sealed, r.aad)
				}
				if oerr == nil && r.address != nil {
					aad := []byte(AddressAAD(r.key))
					if address, oerr = keys.Open(r.address, aad); oerr == nil {
						address = keys.Seal(address, aad)
					}
				}
				if oerr != nil {
					if done.Unreadable++; done.UnreadableErr == nil {
						done.UnreadableErr = fmt.Errorf("re-encrypt %s %s: %w", t.name, r.key, oerr)
					}
					continue
				}
				if orders {
					var email []byte
					if r.plain != nil || r.sealed != nil {
						email = keys.SealString(plain, r.aad)
					}
					b.Queue(uOrders, r.key, email, r.plain, r.sealed, address, r.address)
				} else {
					b.Queue(uNotes, r.key, keys.SealString(plain, r.aad), r.plain, r.sealed)
				}
			}
			res := pool.SendBatch(ctx, b)
			for range b.Len() {
				tag, err := res.Exec()
				if err != nil {
					_ = res.Close()
					return done, fmt.Errorf("encrypt %s: %w", t.name, err)
				}
				*t.count += int(tag.RowsAffected())
			}
			if err := res.Close(); err != nil {
				return done, fmt.Errorf("encrypt %s: %w", t.name, err)
			}
			after = batch[len(batch)-1].key
		}
	}
	return done, nil
}

// Erasure is what ErasePII changed. OrdersScrubbed counts the orders whose
// e-mail and shipping address it removed; OrdersRetained counts all the customer's orders, which
// stay for the audit. NotificationsCancelled counts messages that were still
// to be sent; NotificationsScrubbed counts every message whose address was
// removed.
type Erasure struct {
	OrdersScrubbed, OrdersRetained                int64
	NotificationsCancelled, NotificationsScrubbed int64
}

// ErasePII removes a customer's e-mail and shipping address from every
// order, the e-mail from every notification of those orders (the notify
// area's outbox), and cancels the messages not yet sent, in one statement: the CTEs run on one snapshot and
// commit together. A message the outbox has already claimed and decrypted
// may still go out; its result no longer overwrites 'cancelled'
// (notify.Outbox). Repeating it changes nothing and counts zero scrubbed.
func (s Store) ErasePII(ctx context.Context, customerID string) (Erasure, error) {
	const q = `WITH scrubbed AS (
			UPDATE orders SET email = NULL, email_enc = NULL, shipping_address_enc = NULL, pii_erased_at = coalesce(pii_erased_at, now())
			WHERE customer_id = $1 AND (email IS NOT NULL OR email_enc IS NOT NULL OR shipping_address_enc IS NOT NULL)
			RETURNING 1),
		notes AS (
			UPDATE notifications n SET recipient = NULL, recipient_enc = NULL,
				status = CASE WHEN n.status = 'pending' THEN 'cancelled' ELSE n.status END,
				last_error = CASE WHEN n.status = 'pending' THEN 'personal data erased' ELSE n.last_error END
			FROM orders o
			WHERE o.order_id = n.order_id AND o.customer_id = $1
			  AND (n.recipient IS NOT NULL OR n.recipient_enc IS NOT NULL OR n.status = 'pending')
			RETURNING n.status)
		SELECT (SELECT count(*) FROM scrubbed), (SELECT count(*) FROM orders WHERE customer_id = $1),
			(SELECT count(*) FROM notes WHERE status = 'cancelled'), (SELECT count(*) FROM notes)`
	// One statement, in a transaction of its own so a write the caller
	// hooked on it (db.OnCommit: the audit log's row) commits with it.
	var e Erasure
	err := db.InTx(ctx, s.DB, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, q, customerID).Scan(&e.OrdersScrubbed, &e.OrdersRetained, &e.NotificationsCancelled,
			&e.NotificationsScrubbed)
	})
	if err != nil {
		return Erasure{}, fmt.Errorf("erase personal data of %s: %w", customerID, err)
	}
	return e, nil
}
