package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Request is the record an Idempotency-Key holds for a route other than
// order placement: the fingerprint of the first request and, once it
// succeeded, its answer. Done is false while the first request runs.
type Request struct {
	RequestHash []byte
	Done        bool
	Status      int
	Body        []byte
	Location    string
}

// ClaimRequest records the key as in flight for the request whose
// fingerprint is hash, scoped by (subject, operation, key), owned for lease.
// It reports false, writing nothing, when the key is held: answered and not
// expired, or in flight within its lease. An expired key, or one whose owner
// let its lease pass (it died), is taken over as if it were new.
func (s Store) ClaimRequest(ctx context.Context, subject, operation, key string, hash []byte, lease, ttl time.Duration) (bool, error) {
	const q = `INSERT INTO idempotency_keys
			(customer_id, operation, idempotency_key, request_hash, lease_until, expires_at)
		VALUES ($1, $2, $3, $4, now() + $5::interval, now() + $6::interval)
		ON CONFLICT (customer_id, operation, idempotency_key) DO UPDATE
			SET request_hash = EXCLUDED.request_hash, order_id = NULL, response_status = NULL, response_body = NULL,
			    response_location = NULL, lease_until = EXCLUDED.lease_until, created_at = now(), expires_at = EXCLUDED.expires_at
			WHERE idempotency_keys.expires_at < now()
			   OR (idempotency_keys.response_status IS NULL AND idempotency_keys.lease_until < now())
		RETURNING 1`
	var one int
	err := s.DB.QueryRow(ctx, q, subject, operation, key, hash, lease.String(), ttl.String()).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim idempotency key: %w", err)
	}
	return true, nil
}

// LoadRequest reads the record the key holds; found is false when there is
// none (its first request failed and released it).
func (s Store) LoadRequest(ctx context.Context, subject, operation, key string) (r Request, found bool, err error) {
	const q = `SELECT request_hash, response_status IS NOT NULL, coalesce(response_status, 0),
			coalesce(response_body::text, ''), coalesce(response_location, '')
		FROM idempotency_keys WHERE customer_id = $1 AND operation = $2 AND idempotency_key = $3`
	var body string
	err = s.DB.QueryRow(ctx, q, subject, operation, key).Scan(&r.RequestHash, &r.Done, &r.Status, &body, &r.Location)
	if errors.Is(err, pgx.ErrNoRows) {
		return Request{}, false, nil
	}
	if err != nil {
		return Request{}, false, fmt.Errorf("load idempotency key: %w", err)
	}
	r.Body = []byte(body)
	return r, true, nil
}

// CompleteRequest stores the answer of the request that claimed the key.
func (s Store) CompleteRequest(ctx context.Context, subject, operation, key string, status int, body []byte, location string) error {
	const q = `UPDATE idempotency_keys SET response_status = $4, response_body = nullif($5, '')::jsonb, response_location = nullif($6, ''), lease_until = NULL
		WHERE customer_id = $1 AND operation = $2 AND idempotency_key = $3 AND response_status IS NULL`
	if _, err := s.DB.Exec(ctx, q, subject, operation, key, status, string(body), location); err != nil {
		return fmt.Errorf("complete idempotency key: %w", err)
	}
	return nil
}

// ReleaseRequest forgets an in-flight key whose request failed, so that a
// retry runs it again.
func (s Store) ReleaseRequest(ctx context.Context, subject, operation, key string) error {
	const q = `DELETE FROM idempotency_keys
		WHERE customer_id = $1 AND operation = $2 AND idempotency_key = $3 AND response_status IS NULL`
	if _, err := s.DB.Exec(ctx, q, subject, operation, key); err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}
