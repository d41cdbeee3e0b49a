package webhooks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/activities/events"
)

// ErrNotFound is returned for an endpoint or event that does not exist.
var ErrNotFound = errors.New("not found")

// Endpoint is a subscriber's registered URL. Secrets never leave the store
// through it except when created or rotated (Store.Create, Store.Rotate).
type Endpoint struct {
	ID          string
	URL         string
	Description string
	EventTypes  []string
	Enabled     bool
	// DisabledReason says why the endpoint was disabled (by an operator or
	// after failing for WEBHOOKS_DISABLE_AFTER).
	DisabledReason string
	// FailingSince is the first failure since the last success, if any.
	FailingSince *time.Time
	// PreviousExpiresAt is when the secret a rotation replaced stops
	// signing; nil when no such secret is active.
	PreviousExpiresAt *time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// Attempt is one row of an endpoint's delivery log.
type Attempt struct {
	ID         int64
	EventID    int64
	EventType  string
	Attempt    int
	StatusCode int
	LatencyMS  float64
	Error      string
	At         time.Time
}

// Store is the webhooks' SQL, used by the gateway and the activities.
type Store struct{ DB *pgxpool.Pool }

const endpointCols = `id::text, url, description, event_types, enabled, coalesce(disabled_reason, ''), failing_since,
	CASE WHEN previous_expires_at > now() THEN previous_expires_at END, created_at, updated_at`

func scanEndpoint(row pgx.Row) (Endpoint, error) {
	var e Endpoint
	err := row.Scan(&e.ID, &e.URL, &e.Description, &e.EventTypes, &e.Enabled, &e.DisabledReason, &e.FailingSince,
		&e.PreviousExpiresAt, &e.CreatedAt, &e.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, ErrNotFound
	}
	return e, err
}

// Create registers an endpoint with a fresh secret and returns it with the
// secret, which is shown this once.
func (s Store) Create(ctx context.Context, url, description string, types []string) (Endpoint, string, error) {
	secret, err := NewSecret()
	if err != nil {
		return Endpoint{}, "", err
	}
	const q = `INSERT INTO webhook_endpoints (id, url, description, event_types, secret) VALUES ($1, $2, $3, $4, $5)
		RETURNING ` + endpointCols
	e, err := scanEndpoint(s.DB.QueryRow(ctx, q, uuid.New(), url, description, types, secret))
	if err != nil {
		return Endpoint{}, "", fmt.Errorf("create webhook endpoint: %w", err)
	}
	return e, secret, nil
}

// Get returns one endpoint, or ErrNotFound.
func (s Store) Get(ctx context.Context, id string) (Endpoint, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Endpoint{}, ErrNotFound
	}
	const q = `SELECT ` + endpointCols + ` FROM webhook_endpoints WHERE id = $1`
	e, err := scanEndpoint(s.DB.QueryRow(ctx, q, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return e, fmt.Errorf("read webhook endpoint: %w", err)
	}
	return e, err
}

// List returns every endpoint, oldest first.
func (s Store) List(ctx context.Context) ([]Endpoint, error) {
	const q = `SELECT ` + endpointCols + ` FROM webhook_endpoints ORDER BY created_at, id`
	rows, err := s.DB.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	defer rows.Close()
	out := []Endpoint{}
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("list webhook endpoints: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Patch is a change to an endpoint; nil fields stay as they are.
type Patch struct {
	Enabled     *bool
	EventTypes  []string
	Description *string
	URL         *string
}

// Update applies p. Enabling an endpoint clears its failure record and the
// reason it was disabled.
func (s Store) Update(ctx context.Context, id string, p Patch) (Endpoint, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Endpoint{}, ErrNotFound
	}
	const q = `UPDATE webhook_endpoints SET
		enabled = coalesce($2, enabled),
		disabled_reason = CASE WHEN $2 IS NULL THEN disabled_reason WHEN $2 THEN NULL ELSE 'disabled by an operator' END,
		failing_since = CASE WHEN $2 THEN NULL ELSE failing_since END,
		event_types = coalesce($3, event_types), description = coalesce($4, description), url = coalesce($5, url),
		updated_at = now()
		WHERE id = $1 RETURNING ` + endpointCols
	e, err := scanEndpoint(s.DB.QueryRow(ctx, q, id, p.Enabled, p.EventTypes, p.Description, p.URL))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return e, fmt.Errorf("update webhook endpoint: %w", err)
	}
	return e, err
}

// Delete removes an endpoint and its delivery log; its running deliveries
// find it gone and stop.
func (s Store) Delete(ctx context.Context, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return ErrNotFound
	}
	tag, err := s.DB.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete webhook endpoint: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// Rotate gives the endpoint a new secret and keeps the current one signing
// for overlap, so the subscriber can switch without losing a message; a
// secret replaced by an earlier rotation stops signing now (at most two are
// active). It returns the new secret.
func (s Store) Rotate(ctx context.Context, id string, overlap time.Duration) (Endpoint, string, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Endpoint{}, "", ErrNotFound
	}
	secret, err := NewSecret()
	if err != nil {
		return Endpoint{}, "", err
	}
	const q = `UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = now() + $3 * interval '1 microsecond',
		secret = $2, updated_at = now() WHERE id = $1 RETURNING ` + endpointCols
	e, err := scanEndpoint(s.DB.QueryRow(ctx, q, id, secret, overlap.Microseconds()))
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return e, "", err
		}
		return e, "", fmt.Errorf("rotate webhook secret: %w", err)
	}
	return e, secret, nil
}

// target is what a delivery attempt needs of its endpoint.
type target struct {
	url     string
	enabled bool
	secrets []string
}

func (s Store) target(ctx context.Context, id string) (target, error) {
	const q = `SELECT url, enabled, secret, CASE WHEN previous_expires_at > now() THEN previous_secret END
		FROM webhook_endpoints WHERE id = $1`
	var (
		t    target
		cur  string
		prev *string
	)
	err := s.DB.QueryRow(ctx, q, id).Scan(&t.url, &t.enabled, &cur, &prev)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, ErrNotFound
	}
	if err != nil {
		return t, fmt.Errorf("read webhook endpoint %s: %w", id, err)
	}
	t.secrets = []string{cur}
	if prev != nil {
		t.secrets = append(t.secrets, *prev)
	}
	return t, nil
}

// Event returns the envelope of one event of the outbox, as the relay
// publishes it, or ErrNotFound once the outbox has dropped it (7 days after
// it was published).
func (s Store) Event(ctx context.Context, id int64) (events.Envelope, error) {
	const q = `SELECT e.type, e.version, e.occurred_at, e.region, coalesce(e.order_id::text, ''), o.created_at, e.payload
		FROM event_outbox e LEFT JOIN orders o ON o.order_id = e.order_id WHERE e.id = $1`
	var (
		env      events.Envelope
		accepted *time.Time
	)
	err := s.DB.QueryRow(ctx, q, id).Scan(&env.Type, &env.Version, &env.OccurredAt, &env.Region, &env.OrderID, &accepted, &env.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return env, ErrNotFound
	}
	if err != nil {
		return env, fmt.Errorf("read event %d: %w", id, err)
	}
	env.ID = strconv.FormatInt(id, 10)
	env.OccurredAt = env.OccurredAt.UTC()
	if accepted != nil {
		at := accepted.UTC()
		env.OrderAcceptedAt = &at
	}
	return env, nil
}

// EventPartition returns the partition of an event in the outbox.
func (s Store) EventPartition(ctx context.Context, id int64) (string, error) {
	var p string
	err := s.DB.QueryRow(ctx, `SELECT partition FROM event_outbox WHERE id = $1`, id).Scan(&p)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read event %d: %w", id, err)
	}
	return p, nil
}

// record appends one attempt to the endpoint's delivery log.
func (s Store) record(ctx context.Context, endpointID string, a Attempt) error {
	const q = `INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, attempt, status_code, latency_ms, error)
		SELECT $1, $2, $3, $4, NULLIF($5, 0), $6, NULLIF($7, '') WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1)`
	if _, err := s.DB.Exec(ctx, q, endpointID, a.EventID, a.EventType, a.Attempt, a.StatusCode, a.LatencyMS, a.Error); err != nil {
		return fmt.Errorf("record webhook attempt: %w", err)
	}
	return nil
}

// healthy clears the endpoint's failure record after a success.
func (s Store) healthy(ctx context.Context, id string) error {
	const q = `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`
	if _, err := s.DB.Exec(ctx, q, id); err != nil {
		return fmt.Errorf("record webhook success: %w", err)
	}
	return nil
}

// failing records a failure and disables the endpoint once it has failed,
// with no success in between, for disableAfter. It reports whether this
// call disabled it.
func (s Store) failing(ctx context.Context, id string, disableAfter time.Duration) (disabled bool, err error) {
	const q = `WITH cur AS (SELECT id, enabled AS was FROM webhook_endpoints WHERE id = $1 FOR UPDATE)
		UPDATE webhook_endpoints w SET failing_since = coalesce(w.failing_since, now()),
			enabled = w.enabled AND coalesce(w.failing_since, now()) > now() - $2 * interval '1 microsecond',
			disabled_reason = CASE WHEN w.enabled AND coalesce(w.failing_since, now()) <= now() - $2 * interval '1 microsecond'
				THEN 'failing since ' || to_char(coalesce(w.failing_since, now()) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
				ELSE w.disabled_reason END,
			updated_at = now()
		FROM cur WHERE w.id = cur.id
		RETURNING cur.was AND NOT w.enabled`
	err = s.DB.QueryRow(ctx, q, id, disableAfter.Microseconds()).Scan(&disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record webhook failure: %w", err)
	}
	return disabled, nil
}

// Deliveries returns a page of an endpoint's delivery log, newest first,
// older than the attempt id before (0: from the newest).
func (s Store) Deliveries(ctx context.Context, endpointID string, before int64, limit int) ([]Attempt, error) {
	const q = `SELECT id, event_id, event_type, attempt, coalesce(status_code, 0), latency_ms, coalesce(error, ''), at
		FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3`
	rows, err := s.DB.Query(ctx, q, endpointID, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	defer rows.Close()
	out := []Attempt{}
	for rows.Next() {
		var a Attempt
		if err := rows.Scan(&a.ID, &a.EventID, &a.EventType, &a.Attempt, &a.StatusCode, &a.LatencyMS, &a.Error, &a.At); err != nil {
			return nil, fmt.Errorf("list webhook deliveries: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
