// Package audit is the audit log's store: every operator and admin act is
// appended to audit_log with who did it, in which role, what, to what, why,
// under which request and when. Rows are never changed: the application's
// role may only INSERT and SELECT (schema/0015), and each row carries the
// hash of the row before it, so a row edited, removed or slipped in by
// someone who could bypass that (a superuser) breaks the chain where Verify
// finds it (docs/security.md).
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/internal/db"
)

// Entry is one row of the audit log. The caller of Append fills Actor to
// Details; Append sets the rest.
type Entry struct {
	ID        int64
	At        time.Time
	Actor     string
	Role      string
	Action    string
	Target    string
	Reason    string
	RequestID string
	// Details is a JSON object with what the act changed (nil: {}).
	Details  json.RawMessage
	PrevHash []byte
	Hash     []byte
}

// appendLock is the transaction-scoped advisory lock that serializes
// appends, so each row's prev_hash is the hash of the row committed before
// it and the chain follows id order.
const appendLock int64 = 0x6f66_6175_6469_7401 // "ofaudit" and a version

// Append appends e to the chain inside tx and returns it as stored. It waits
// for appends of other transactions to commit (they hold appendLock until
// then), so it belongs at the end of the act's transaction.
func Append(ctx context.Context, tx pgx.Tx, e Entry) (Entry, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, appendLock); err != nil {
		return Entry{}, fmt.Errorf("audit lock: %w", err)
	}
	if len(e.Details) == 0 {
		e.Details = json.RawMessage(`{}`)
	}
	// The id, the time, the previous hash and the details as PostgreSQL
	// will store them (jsonb's own text), all of which the hash covers.
	const qNext = `SELECT nextval('audit_log_id_seq'), clock_timestamp(),
			coalesce((SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1), ''::bytea), $1::jsonb::text`
	var details string
	if err := tx.QueryRow(ctx, qNext, string(e.Details)).Scan(&e.ID, &e.At, &e.PrevHash, &details); err != nil {
		return Entry{}, fmt.Errorf("audit append: %w", err)
	}
	e.At = e.At.UTC()
	e.Details = json.RawMessage(details)
	e.Hash = Hash(e)
	const q = `INSERT INTO audit_log (id, at, actor, role, action, target, reason, request_id, details, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)`
	if _, err := tx.Exec(ctx, q, e.ID, e.At, e.Actor, e.Role, e.Action, e.Target, e.Reason, e.RequestID, details, e.PrevHash, e.Hash); err != nil {
		return Entry{}, fmt.Errorf("audit append: %w", err)
	}
	return e, nil
}

// Hash is a row's hash: SHA-256 over its id, time (in microseconds, as
// PostgreSQL keeps it), text fields and details, each length-prefixed, and
// the previous row's hash.
func Hash(e Entry) []byte {
	h := sha256.New()
	var n [8]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	binary.BigEndian.PutUint64(n[:], uint64(e.ID))
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(e.At.UnixMicro()))
	h.Write(n[:])
	for _, s := range []string{e.Actor, e.Role, e.Action, e.Target, e.Reason, e.RequestID} {
		put([]byte(s))
	}
	put(e.Details)
	put(e.PrevHash)
	return h.Sum(nil)
}

// Store reads and appends the audit log on a pool.
type Store struct {
	DB *pgxpool.Pool
}

// Append appends e in a transaction of its own: for an act that is not a
// write of this database (a Temporal update), appended before the act.
func (s Store) Append(ctx context.Context, e Entry) (Entry, error) {
	var out Entry
	err := db.InTx(ctx, s.DB, func(tx pgx.Tx) error {
		var err error
		out, err = Append(ctx, tx, e)
		return err
	})
	return out, err
}

// Query selects a page of the log: rows of Actor and of Target when set,
// after the row id After, at most Limit, oldest first.
type Query struct {
	Actor, Target string
	After         int64
	Limit         int
}

// Page is one page of the log; Next is the After of the following page, 0
// on the last one.
type Page struct {
	Entries []Entry
	Next    int64
}

const columns = `id, at, actor, role, action, target, reason, request_id, details::text, prev_hash, hash`

func scan(rows pgx.CollectableRow) (Entry, error) {
	var e Entry
	var details string
	err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Role, &e.Action, &e.Target, &e.Reason, &e.RequestID, &details, &e.PrevHash, &e.Hash)
	e.At = e.At.UTC()
	e.Details = json.RawMessage(details)
	return e, err
}

// List reads a page of the log.
func (s Store) List(ctx context.Context, q Query) (Page, error) {
	const sql = `SELECT ` + columns + ` FROM audit_log
		WHERE ($1 = '' OR actor = $1) AND ($2 = '' OR target = $2) AND id > $3
		ORDER BY id LIMIT $4`
	rows, err := s.DB.Query(ctx, sql, q.Actor, q.Target, q.After, q.Limit+1)
	if err != nil {
		return Page{}, fmt.Errorf("read audit log: %w", err)
	}
	all, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return Page{}, fmt.Errorf("read audit log: %w", err)
	}
	page, last := activities.Page(all, q.Limit)
	out := Page{Entries: page}
	if last != nil {
		out.Next = last.ID
	}
	return out, nil
}

// Break is the first broken link Verify found.
type Break struct {
	ID     int64
	Reason string
}

// Report is what Verify found: the rows it read, the last row's hash (to
// write down: a chain cut short at its end still verifies, so the head is
// anchored outside the database) and the first broken link, if any.
type Report struct {
	Rows   int64
	LastID int64
	Head   []byte
	Broken *Break
}

// Verify reads the whole log in id order and checks each row's link to the
// row before and its own hash; it stops at the first broken link.
func (s Store) Verify(ctx context.Context) (Report, error) {
	rows, err := s.DB.Query(ctx, `SELECT `+columns+` FROM audit_log ORDER BY id`)
	if err != nil {
		return Report{}, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var r Report
	prev := []byte{}
	for rows.Next() {
		e, err := scan(rows)
		if err != nil {
			return Report{}, fmt.Errorf("read audit log: %w", err)
		}
		r.Rows++
		switch {
		case !bytes.Equal(e.PrevHash, prev):
			r.Broken = &Break{ID: e.ID, Reason: fmt.Sprintf("its prev_hash is %x, but the row before it hashes to %x (a row before it was changed, removed or inserted)", e.PrevHash, prev)}
		case !bytes.Equal(Hash(e), e.Hash):
			r.Broken = &Break{ID: e.ID, Reason: "its content does not match its hash (the row was changed)"}
		}
		if r.Broken != nil {
			return r, nil
		}
		prev, r.LastID, r.Head = e.Hash, e.ID, e.Hash
	}
	if err := rows.Err(); err != nil {
		return Report{}, fmt.Errorf("read audit log: %w", err)
	}
	return r, nil
}
