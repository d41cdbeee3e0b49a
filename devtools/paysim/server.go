package paysim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/activities/payment"
	wire "github.com/orderflow/orderflow/activities/payment/paysim"
)

// maxBody bounds a request body; the API's forms are a few hundred bytes.
const maxBody = 64 << 10

// Server is one simulated provider instance: a Stripe-like HTTP API in front
// of the instance's ledger, with the faults it is told to inject.
//
//	POST /v1/charges          amount, currency, source, description, capture (false: authorize only);
//	                          Idempotency-Key required
//	POST /v1/charges/{id}/capture  amount, final_capture (default true); Idempotency-Key required
//	POST /v1/charges/{id}/cancel   voids what is left of an authorization; Idempotency-Key required
//	GET  /v1/charges?idempotency_key=K   the charge made with K, as a list of zero or one
//	GET  /v1/charges?created[gte]=&created[lt]=&limit=&starting_after=
//	                          the charges of a window, a page at a time, with amount_refunded
//	                          and, for authorizations, amount_captured and status
//	POST /v1/refunds          charge, amount (optional: the rest of the charge); Idempotency-Key required
//	GET  /health              200 when the ledger's database answers
//	GET  /admin/faults        the faults in force
//	PUT  /admin/faults        replaces them (JSON, see Faults)
//
// Answers are JSON; failures use Stripe's shape {"error":{"type","code","message"}}:
// 402 card_error for a decline, 400 invalid_request_error or idempotency_error
// for a bad request, 5xx api_error for the provider's own trouble.
type Server struct {
	ledger *Ledger
	log    *zap.Logger

	mu     sync.RWMutex
	faults Faults

	closeOnce sync.Once
	closing   chan struct{}
}

// NewServer returns the instance named name, keeping its ledger in pool,
// injecting faults from the start. Invalid faults are an error.
func NewServer(pool *pgxpool.Pool, name string, faults Faults, log *zap.Logger) (*Server, error) {
	if name == "" {
		return nil, errors.New("paysim: the instance needs a name")
	}
	if err := faults.Validate(); err != nil {
		return nil, fmt.Errorf("paysim faults: %w", err)
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Server{ledger: &Ledger{DB: pool, Instance: name}, log: log.With(zap.String("instance", name)),
		faults: faults, closing: make(chan struct{})}, nil
}

// Name is the instance's name, which scopes its ledger.
func (s *Server) Name() string { return s.ledger.Instance }

// Ledger is the instance's ledger.
func (s *Server) Ledger() *Ledger { return s.ledger }

// Faults returns the faults in force.
func (s *Server) Faults() Faults {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.faults
}

// SetFaults replaces the faults in force; invalid faults are an error and
// change nothing.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	s.log.Info("faults set", zap.Any("faults", f))
	return nil
}

// Close drops the requests held by TimeoutRate without an answer, so a
// graceful shutdown does not wait for their clients to give up.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

// Handler returns the HTTP API.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// Read the body first: net/http notices a client that hangs up only once
	// the body is consumed, and Latency and TimeoutRate must notice it.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "body_unreadable", "Bad request body: "+err.Error())
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if r.URL.Path == "/admin/faults" {
		s.adminFaults(w, r)
		return
	}
	f := s.Faults()
	if f.Outage {
		writeError(w, http.StatusServiceUnavailable, "api_error", "outage", "The provider is down (injected outage).")
		return
	}
	if f.Latency > 0 && !s.wait(r.Context(), time.Duration(f.Latency)) {
		return
	}
	if r.URL.Path == "/health" {
		s.health(w, r)
		return
	}
	var route func(http.ResponseWriter, *http.Request)
	switch path := r.URL.Path; {
	case strings.HasPrefix(path, "/v1/charges/"):
		id, action, _ := strings.Cut(strings.TrimPrefix(path, "/v1/charges/"), "/")
		handler := map[string]func(http.ResponseWriter, *http.Request, string){"capture": s.capture, "cancel": s.cancel}[action]
		if id == "" || handler == nil {
			writeError(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "Unrecognized request URL ("+r.Method+": "+r.URL.Path+").")
			return
		}
		if r.Method == http.MethodPost {
			route = func(w http.ResponseWriter, r *http.Request) { handler(w, r, id) }
		}
	case path == "/v1/charges":
		route = map[string]func(http.ResponseWriter, *http.Request){http.MethodPost: s.createCharge, http.MethodGet: s.listCharges}[r.Method]
	case path == "/v1/refunds":
		if r.Method == http.MethodPost {
			route = s.createRefund
		}
	default:
		writeError(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "Unrecognized request URL ("+r.Method+": "+r.URL.Path+").")
		return
	}
	if route == nil {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "Method "+r.Method+" is not allowed on "+r.URL.Path+".")
		return
	}
	if hit(f.TimeoutRate) {
		s.hold(r.Context())
		return
	}
	if hit(f.ErrorRate) {
		writeError(w, http.StatusInternalServerError, "api_error", "injected_error", "An error occurred while processing your request (injected).")
		return
	}
	route(w, r)
}

// hit draws whether a fault with this rate strikes: never at 0, always at 1.
func hit(rate float64) bool { return rate > 0 && rand.Float64() < rate }

// wait sleeps for d unless the client gives up first; it reports whether the
// request should go on.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// hold keeps a request unanswered until its client gives up or the server
// closes, then drops the connection without an answer.
func (s *Server) hold(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-s.closing:
	}
	panic(http.ErrAbortHandler) // net/http closes the connection, writing nothing
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "Use GET /health.")
		return
	}
	if err := s.ledger.Ping(r.Context()); err != nil {
		s.log.Warn("health: ledger unreachable", zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, "api_error", "ledger_unavailable", "The ledger database does not answer.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "name": s.Name()})
}

func (s *Server) adminFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut:
		var f Faults
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_faults", "Bad faults: "+err.Error())
			return
		}
		if err := s.SetFaults(f); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_faults", "Bad faults: "+err.Error())
			return
		}
	default:
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method_not_allowed", "Use GET or PUT /admin/faults.")
		return
	}
	writeJSON(w, http.StatusOK, s.Faults())
}

// newChargeJSON answers a charge, or an authorization when it has an
// expiry: captured in full, or not yet at all.
func newChargeJSON(key string, ch payment.Charge) wire.ChargeJSON {
	out := wire.ChargeJSON{ID: ch.ID, Object: "charge", Amount: ch.AmountCents, Currency: ch.Currency, Status: wire.StatusSucceeded,
		IdempotencyKey: key, CaptureMethod: "automatic", AmountCaptured: ch.AmountCents}
	if !ch.ExpiresAt.IsZero() {
		out.Status, out.CaptureMethod, out.AmountCaptured, out.ExpiresAt = wire.StatusRequiresCapture, "manual", 0, ch.ExpiresAt.Unix()
	}
	return out
}

func (s *Server) createCharge(w http.ResponseWriter, r *http.Request) {
	key, ok := form(w, r)
	if !ok {
		return
	}
	req := payment.ChargeRequest{IdempotencyKey: key, Token: r.PostForm.Get("source"),
		Currency: r.PostForm.Get("currency"), Description: r.PostForm.Get("description")}
	var err error
	if req.AmountCents, err = amount(r, true); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer", err.Error())
		return
	}
	if len(req.Currency) != 3 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "currency must be a three-letter ISO code.")
		return
	}
	if req.Token == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_missing", "Missing required param: source.")
		return
	}
	take := s.ledger.Charge
	switch r.PostForm.Get("capture") {
	case "", "true":
	case "false":
		take = s.ledger.Authorize
	default:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "capture must be true or false.")
		return
	}
	ch, err := take(r.Context(), req)
	if err != nil {
		s.writeLedgerError(w, err)
		return
	}
	if hit(s.Faults().LostAnswerRate) {
		s.log.Info("charge made, answer lost (injected)", zap.String("idempotency_key", key), zap.String("charge", ch.ID))
		writeError(w, http.StatusInternalServerError, "api_error", "injected_lost_answer", "An error occurred while processing your request (injected).")
		return
	}
	writeJSON(w, http.StatusOK, newChargeJSON(key, ch))
}

func (s *Server) listCharges(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("idempotency_key")
	if key == "" {
		s.listWindow(w, r)
		return
	}
	ch, found, err := s.ledger.FindCharge(r.Context(), key)
	if err != nil {
		s.writeLedgerError(w, err)
		return
	}
	list := wire.ListJSON{Object: "list", Data: []wire.ChargeJSON{}}
	if found {
		list.Data = append(list.Data, newChargeJSON(key, ch))
	}
	writeJSON(w, http.StatusOK, list)
}

// listWindow answers GET /v1/charges without idempotency_key: the charges
// created in [created[gte], created[lt]) (Unix seconds, both optional), a
// page of limit (1 to 100, default 10) after the charge starting_after, as
// Stripe lists them, each with its amount_refunded.
func (s *Server) listWindow(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, until := time.Unix(0, 0), time.Unix(1<<40, 0)
	limit := 10
	for _, p := range []struct {
		name     string
		min, max int64
		set      func(int64)
	}{
		{"created[gte]", 0, 1 << 40, func(v int64) { since = time.Unix(v, 0) }},
		{"created[lt]", 0, 1 << 40, func(v int64) { until = time.Unix(v, 0) }},
		{"limit", 1, wire.MaxListLimit, func(v int64) { limit = int(v) }},
	} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < p.min || n > p.max {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer",
				fmt.Sprintf("Invalid integer: %s must be from %d to %d.", p.name, p.min, p.max))
			return
		}
		p.set(n)
	}
	entries, err := s.ledger.List(r.Context(), since, until, q.Get("starting_after"), limit+1)
	if err != nil {
		s.writeLedgerError(w, err)
		return
	}
	list := wire.ListJSON{Object: "list", Data: []wire.ChargeJSON{}, HasMore: len(entries) > limit}
	for i, e := range entries {
		if i == limit {
			break
		}
		ch := newChargeJSON(e.IdempotencyKey, payment.Charge{ID: e.ID, AmountCents: e.AmountCents, Currency: e.Currency, ExpiresAt: e.ExpiresAt})
		ch.AmountRefunded, ch.Created, ch.AmountCaptured, ch.Status = e.RefundedCents, e.Created.Unix(), e.CapturedCents, e.Status
		list.Data = append(list.Data, ch)
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) createRefund(w http.ResponseWriter, r *http.Request) {
	key, ok := form(w, r)
	if !ok {
		return
	}
	req := payment.RefundRequest{IdempotencyKey: key, ChargeID: r.PostForm.Get("charge")}
	if req.ChargeID == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_missing", "Missing required param: charge.")
		return
	}
	var err error
	if req.AmountCents, err = amount(r, false); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer", err.Error())
		return
	}
	rf, ch, err := s.ledger.Refund(r.Context(), req)
	if err != nil {
		s.writeLedgerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.RefundJSON{ID: rf.ID, Object: "refund", Charge: ch.ID, Amount: rf.AmountCents, Currency: ch.Currency, Status: "succeeded"})
}

// capture answers POST /v1/charges/{id}/capture: amount (0 only with a
// final capture) and final_capture (default true, as Stripe's).
func (s *Server) capture(w http.ResponseWriter, r *http.Request, id string) {
	key, ok := form(w, r)
	if !ok {
		return
	}
	req := payment.CaptureRequest{IdempotencyKey: key, ChargeID: id, Final: true}
	switch r.PostForm.Get("final_capture") {
	case "", "true":
	case "false":
		req.Final = false
	default:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "final_capture must be true or false.")
		return
	}
	n, err := strconv.ParseInt(r.PostForm.Get("amount"), 10, 64)
	if err != nil || n < 0 || n == 0 && !req.Final {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer",
			"amount must be a number of cents, positive unless final_capture is true.")
		return
	}
	req.AmountCents = n
	cp, err := s.ledger.Capture(r.Context(), req)
	if err != nil {
		s.writeLedgerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.CaptureJSON{ID: cp.ID, Object: "capture", Charge: id, Amount: cp.AmountCents,
		AmountReleased: cp.ReleasedCents, Final: req.Final})
}

// cancel answers POST /v1/charges/{id}/cancel: the void of an authorization.
func (s *Server) cancel(w http.ResponseWriter, r *http.Request, id string) {
	key, ok := form(w, r)
	if !ok {
		return
	}
	ref, released, err := s.ledger.Void(r.Context(), payment.VoidRequest{IdempotencyKey: key, ChargeID: id})
	if err != nil {
		s.writeLedgerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.VoidJSON{ID: ref, Object: "void", Charge: id, AmountReleased: released})
}

// form checks the idempotency key and parses the form body; on failure it
// has answered 400.
func form(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := r.Header.Get(wire.HeaderIdempotencyKey)
	if key == "" || len(key) > 255 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "idempotency_key_required", "An Idempotency-Key header of 1 to 255 characters is required.")
		return "", false
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", "Bad form body: "+err.Error())
		return "", false
	}
	return key, true
}

// amount reads the amount parameter: a positive integer of cents, or absent
// when not required (0).
func amount(r *http.Request, required bool) (int64, error) {
	v := r.PostForm.Get("amount")
	if v == "" {
		if required {
			return 0, errors.New("missing required param: amount")
		}
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("invalid integer: amount must be a positive number of cents")
	}
	return n, nil
}

// writeLedgerError answers a ledger failure: a decline 402, a bad request
// 400, the simulated network's trouble 503, anything else 500.
func (s *Server) writeLedgerError(w http.ResponseWriter, err error) {
	var declined *payment.DeclinedError
	switch {
	case errors.As(err, &declined):
		writeError(w, http.StatusPaymentRequired, "card_error", declined.Code, declined.Message)
	case errors.Is(err, wire.ErrIdempotencyMismatch):
		writeError(w, http.StatusBadRequest, "idempotency_error", "idempotency_key_in_use", "Keys for idempotent requests can only be used with the same parameters they were first used with.")
	case errors.Is(err, wire.ErrNoSuchCharge):
		writeError(w, http.StatusBadRequest, "invalid_request_error", "resource_missing", err.Error())
	case errors.Is(err, wire.ErrRefundTooLarge):
		writeError(w, http.StatusBadRequest, "invalid_request_error", "amount_too_large", err.Error())
	case errors.Is(err, wire.ErrCaptureTooLarge):
		writeError(w, http.StatusBadRequest, "invalid_request_error", "capture_too_large", err.Error())
	case errors.Is(err, wire.ErrAuthorizationExpired):
		writeError(w, http.StatusBadRequest, "invalid_request_error", "charge_expired_for_capture", err.Error())
	case errors.Is(err, wire.ErrAuthorizationClosed):
		writeError(w, http.StatusBadRequest, "invalid_request_error", "charge_not_capturable", err.Error())
	case errors.Is(err, wire.ErrNotAnAuthorization):
		writeError(w, http.StatusBadRequest, "invalid_request_error", "charge_already_captured", err.Error())
	case errors.Is(err, errTransient):
		writeError(w, http.StatusServiceUnavailable, "api_error", "card_network_unavailable", err.Error())
	default:
		s.log.Error("ledger failed", zap.Error(err))
		writeError(w, http.StatusInternalServerError, "api_error", "ledger_error", "An error occurred while processing your request.")
	}
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSON(w, status, wire.ErrorBody{Error: wire.APIErrorJSON{Type: typ, Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
