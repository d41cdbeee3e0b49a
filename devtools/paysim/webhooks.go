package paysim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v82/webhook"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/activities/payment"
	wire "github.com/orderflow/orderflow/activities/payment/paysim"
	"github.com/orderflow/orderflow/internal/db"
)

// The simulator's webhooks, signed and shaped as Stripe's (an event object
// with data.object, the Stripe-Signature header over "t.body"), so the
// gateway verifies both with stripe-go's webhook package:
//
//	payment_intent.succeeded / payment_intent.payment_failed
//	                      when a charge made with payment.TokenThreeDSecure
//	                      completes its 3-D Secure step (POST /admin/3ds/complete)
//	charge.dispute.created  when a dispute is opened on a charge (POST /admin/disputes)
//
//	GET/PUT /admin/webhooks  the endpoint, its secret, and the delivery knobs
//	                         (late, out of order, twice) chaos turns on
//
// A charge's events carry metadata order_id (from the charge's description,
// "order <id>", as orderflow writes it) and charge_key (its idempotency key).

// qWebhookSchema holds the charges waiting for their 3-D Secure step; a
// completed one is then written to the ledger like any charge.
const qWebhookSchema = `CREATE TABLE IF NOT EXISTS paysim.pending (
    instance        text NOT NULL,
    idempotency_key text NOT NULL,
    ref             text NOT NULL UNIQUE,
    token           text NOT NULL,
    amount_cents    bigint NOT NULL,
    currency        text NOT NULL,
    description     text,
    status          text NOT NULL DEFAULT 'requires_action' CHECK (status IN ('requires_action', 'succeeded', 'failed')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, idempotency_key)
);
-- What the completed step makes: a charge, or an authorization (capture=false).
ALTER TABLE paysim.pending ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'charge'
    CHECK (kind IN ('charge', 'authorization'));`

// Webhooks is where and how the instance sends its events.
type Webhooks struct {
	// URL is the endpoint (the gateway's /v1/webhooks/payments/<name>);
	// empty sends nothing.
	URL string `json:"url"`
	// Secret signs the events (the gateway's PAYMENT_WEBHOOK_SECRETS entry).
	Secret string `json:"secret"`
	// Delay holds every event this long before it goes (late events).
	Delay Duration `json:"delay"`
	// Jitter adds a random wait of up to this to each event, so that
	// events overtake each other (out of order).
	Jitter Duration `json:"jitter"`
	// DuplicateRate is the fraction of events sent twice.
	DuplicateRate float64 `json:"duplicate_rate"`
}

// Validate refuses rates outside [0, 1] and negative waits.
func (h Webhooks) Validate() error {
	if h.DuplicateRate < 0 || h.DuplicateRate > 1 {
		return errors.New("duplicate_rate must be within [0, 1]")
	}
	if h.Delay < 0 || h.Jitter < 0 {
		return errors.New("delay and jitter must not be negative")
	}
	if h.URL != "" && len(h.Secret) < 16 {
		return errors.New("a webhook URL needs a secret of at least 16 bytes")
	}
	return nil
}

// WebhookRetryFor is how long an event is re-sent while the endpoint
// fails: long enough to outlast the gateway's outages of a chaos run (a
// Temporal outage answers 503), as Stripe's 3 days of retries outlast a
// real one. The 6 tries of before gave up within 7 s and lost a late 3-D
// Secure success, leaving an authorization without an order.
const WebhookRetryFor = 3 * time.Minute

// webhookSender sends the instance's events, each on its own goroutine.
type webhookSender struct {
	mu  sync.RWMutex
	cfg Webhooks
	wg  sync.WaitGroup
}

// SetWebhooks replaces where and how events are sent.
func (s *Server) SetWebhooks(h Webhooks) error {
	if err := h.Validate(); err != nil {
		return err
	}
	s.hooks.mu.Lock()
	s.hooks.cfg = h
	s.hooks.mu.Unlock()
	return nil
}

// WebhooksConfig returns where and how events are sent.
func (s *Server) WebhooksConfig() Webhooks {
	s.hooks.mu.RLock()
	defer s.hooks.mu.RUnlock()
	return s.hooks.cfg
}

// WaitWebhooks waits until every event sent so far was delivered or given up.
func (s *Server) WaitWebhooks() { s.hooks.wg.Wait() }

// adminWebhooks serves /admin/webhooks, /admin/3ds/complete and /admin/disputes.
func (s *Server) adminWebhooks(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/admin/webhooks" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, s.WebhooksConfig())
	case r.URL.Path == "/admin/webhooks" && r.Method == http.MethodPut:
		var h Webhooks
		if !decodeAdmin(w, r, &h) {
			return
		}
		if err := s.SetWebhooks(h); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_webhooks", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, s.WebhooksConfig())
	case r.URL.Path == "/admin/3ds/complete" && r.Method == http.MethodPost:
		var req CompleteRequest
		if !decodeAdmin(w, r, &req) {
			return
		}
		status, err := s.CompleteThreeDSecure(r.Context(), req.Charge, req.Outcome)
		if err != nil {
			s.writeLedgerError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"charge": req.Charge, "status": status})
	case r.URL.Path == "/admin/disputes" && r.Method == http.MethodPost:
		var req DisputeRequest
		if !decodeAdmin(w, r, &req) {
			return
		}
		id, err := s.OpenDispute(r.Context(), req.Charge, req.Reason)
		if err != nil {
			s.writeLedgerError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id, "charge": req.Charge})
	default:
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "Method "+r.Method+" is not allowed on "+r.URL.Path+".")
	}
}

// CompleteRequest is the body of POST /admin/3ds/complete.
type CompleteRequest struct {
	Charge  string `json:"charge"`
	Outcome string `json:"outcome"` // succeeded or failed
}

// DisputeRequest is the body of POST /admin/disputes.
type DisputeRequest struct {
	Charge string `json:"charge"`
	Reason string `json:"reason"`
}

func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_body", "Bad body: "+err.Error())
		return false
	}
	return true
}

// requireAction answers a charge made with payment.TokenThreeDSecure: the
// first request under its key records it as waiting for the customer's
// 3-D Secure step, and every request under the key answers what became
// of it: still pending (*payment.PendingError), declined, or the charge.
func (l *Ledger) requireAction(ctx context.Context, kind string, req payment.ChargeRequest) (payment.Charge, error) {
	const (
		qInsert = `INSERT INTO paysim.pending (instance, idempotency_key, ref, token, amount_cents, currency, description, kind)
			VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), $8) ON CONFLICT (instance, idempotency_key) DO NOTHING`
		qGet = `SELECT ref, token, amount_cents, currency, status FROM paysim.pending WHERE instance = $1 AND idempotency_key = $2`
	)
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	if _, err := l.DB.Exec(ctx, qInsert, l.Instance, req.IdempotencyKey, "pi_"+uuid.NewString(), req.Token, req.AmountCents,
		req.Currency, req.Description, kind); err != nil {
		return payment.Charge{}, fmt.Errorf("ledger pending charge: %w", err)
	}
	var ch payment.Charge
	var token, status string
	if err := l.DB.QueryRow(ctx, qGet, l.Instance, req.IdempotencyKey).Scan(&ch.ID, &token, &ch.AmountCents, &ch.Currency, &status); err != nil {
		return payment.Charge{}, fmt.Errorf("ledger pending charge: %w", err)
	}
	if token != req.Token || ch.AmountCents != req.AmountCents || ch.Currency != req.Currency {
		return payment.Charge{}, fmt.Errorf("charge %s: %w", req.IdempotencyKey, wire.ErrIdempotencyMismatch)
	}
	switch status {
	case "succeeded":
		return ch, nil
	case "failed":
		return payment.Charge{}, &payment.DeclinedError{Code: "authentication_failed", Message: "The customer failed 3-D Secure authentication."}
	}
	return payment.Charge{}, &payment.PendingError{ChargeID: ch.ID, Reason: wire.StatusRequiresAction}
}

// CompleteThreeDSecure ends a pending charge's 3-D Secure step with outcome
// (succeeded: the charge is made and in the ledger; failed: it is
// declined) and sends its event. Completing it again changes nothing and
// sends nothing; it answers the charge's status.
func (s *Server) CompleteThreeDSecure(ctx context.Context, ref, outcome string) (string, error) {
	if outcome != "succeeded" && outcome != "failed" {
		return "", fmt.Errorf("outcome %q: %w", outcome, wire.ErrNoSuchCharge)
	}
	const (
		qComplete = `UPDATE paysim.pending SET status = $3 WHERE instance = $1 AND ref = $2 AND status = 'requires_action'
			RETURNING idempotency_key, token, amount_cents, currency, coalesce(description, ''), kind`
		// An authorization's expiry runs from the completed step, on the
		// database's clock as in Ledger.take.
		qCharge = `INSERT INTO paysim.ledger (instance, idempotency_key, kind, ref, token, amount_cents, currency, description, expires_at)
			VALUES ($1, $2, $8, $3, $4, $5, $6, NULLIF($7, ''),
			        CASE WHEN $8 = 'authorization' THEN now() + make_interval(secs => $9::float8 / 1e9) END)
			ON CONFLICT (instance, idempotency_key) DO NOTHING`
		qStatus = `SELECT status FROM paysim.pending WHERE instance = $1 AND ref = $2`
	)
	var key, token, currency, desc, kind string
	var amount int64
	changed := false
	err := db.InTx(ctx, s.ledger.DB, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, qComplete, s.Name(), ref, outcome).Scan(&key, &token, &amount, &currency, &desc, &kind)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		changed = true
		if outcome == "succeeded" {
			_, err = tx.Exec(ctx, qCharge, s.Name(), key, ref, token, amount, currency, desc, kind, float64(s.ledger.AuthorizationTTL()))
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("complete 3-D Secure of %s: %w", ref, err)
	}
	if !changed {
		var status string
		err := s.ledger.DB.QueryRow(ctx, qStatus, s.Name(), ref).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("complete 3-D Secure: %w: %s", wire.ErrNoSuchCharge, ref)
		}
		return status, err
	}
	typ := "payment_intent.succeeded"
	obj := map[string]any{"id": ref, "object": "payment_intent", "amount": amount, "currency": strings.ToLower(currency),
		"status": outcome, "metadata": metadata(key, desc)}
	if kind == kindAuthorization && outcome == "succeeded" {
		// Stripe's event for a manual-capture intent whose amount can now
		// be captured.
		typ, obj["status"], obj["amount_capturable"] = "payment_intent.amount_capturable_updated", "requires_capture", amount
	}
	if outcome == "failed" {
		typ = "payment_intent.payment_failed"
		obj["status"] = "requires_payment_method"
		obj["last_payment_error"] = map[string]any{"code": "authentication_failed"}
	}
	s.send(typ, obj)
	return outcome, nil
}

// OpenDispute opens a dispute on one of the instance's charges, as a
// customer's bank would, and sends charge.dispute.created. It returns the
// dispute's id.
func (s *Server) OpenDispute(ctx context.Context, ref, reason string) (string, error) {
	const q = `SELECT amount_cents, currency FROM paysim.ledger WHERE instance = $1 AND ref = $2 AND kind IN ('charge', 'authorization')`
	var amount int64
	var currency string
	err := s.ledger.DB.QueryRow(ctx, q, s.Name(), ref).Scan(&amount, &currency)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("dispute: %w: %s", wire.ErrNoSuchCharge, ref)
	}
	if err != nil {
		return "", fmt.Errorf("dispute %s: %w", ref, err)
	}
	if reason == "" {
		reason = "fraudulent"
	}
	id := "dp_" + uuid.NewString()
	s.send("charge.dispute.created", map[string]any{"id": id, "object": "dispute", "charge": ref, "amount": amount,
		"currency": strings.ToLower(currency), "reason": reason, "status": "needs_response"})
	return id, nil
}

func metadata(key, description string) map[string]string {
	m := map[string]string{payment.MetadataChargeKey: key}
	if id, ok := strings.CutPrefix(description, "order "); ok {
		if _, err := uuid.Parse(id); err == nil {
			m[payment.MetadataOrderID] = id
		}
	}
	return m
}

// send delivers one event to the configured endpoint in the background:
// after Delay plus up to Jitter, re-sent on failure for WebhookRetryFor
// (backing off from 200 ms to 5 s; Stripe re-sends for 3 days), and sent
// a second time with DuplicateRate.
func (s *Server) send(typ string, obj map[string]any) {
	cfg := s.WebhooksConfig()
	if cfg.URL == "" {
		return
	}
	body, err := json.Marshal(map[string]any{"id": "evt_" + uuid.NewString(), "object": "event", "type": typ,
		"created": time.Now().Unix(), "livemode": false, "data": map[string]any{"object": obj}})
	if err != nil {
		s.log.Error("encode webhook event", zap.Error(err))
		return
	}
	copies := 1
	if hit(cfg.DuplicateRate) {
		copies = 2
	}
	for range copies {
		wait := time.Duration(cfg.Delay)
		if cfg.Jitter > 0 {
			wait += rand.N(time.Duration(cfg.Jitter))
		}
		s.hooks.wg.Add(1)
		go func() {
			defer s.hooks.wg.Done()
			s.deliver(cfg, typ, body, wait)
		}()
	}
}

func (s *Server) deliver(cfg Webhooks, typ string, body []byte, wait time.Duration) {
	backoff := 200 * time.Millisecond
	giveUp := time.Now().Add(wait + WebhookRetryFor)
	for attempt := 1; ; attempt++ {
		select {
		case <-time.After(wait):
		case <-s.closing:
			return
		}
		status, err := post(cfg, body)
		if err == nil && status/100 == 2 {
			s.log.Debug("webhook delivered", zap.String("type", typ), zap.Int("attempt", attempt))
			return
		}
		s.log.Info("webhook not delivered", zap.String("type", typ), zap.Int("attempt", attempt), zap.Int("status", status), zap.Error(err))
		if time.Now().Add(backoff).After(giveUp) {
			s.log.Warn("webhook given up", zap.String("type", typ), zap.Int("attempts", attempt))
			return
		}
		wait, backoff = backoff, min(backoff*2, 5*time.Second)
	}
}

func post(cfg Webhooks, body []byte) (int, error) {
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: cfg.Secret, Timestamp: time.Now()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", signed.Header)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}
