package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/db"
)

// keyLease is how long a request that claimed an Idempotency-Key owns it
// while it runs. A request is bounded by requestTimeout; a record still in
// flight past its lease belongs to a gateway that died mid-request, and the
// next request with the key takes it over.
const keyLease = 6 * requestTimeout

// keyPoll is how often a request waiting on an in-flight duplicate looks
// for its answer.
const keyPoll = 25 * time.Millisecond

// requestKey names one idempotent request: the scope keys live in (the
// token's subject, or the carrier's shipment), the operation (the route),
// the key and the request's fingerprint.
type requestKey struct {
	scope, operation, key string
	hash                  []byte
	// replayed, when set, marks a stored answer as given again in its
	// body, for a route whose answer says so itself (a carrier event's
	// duplicate flag), besides the Idempotent-Replayed header.
	replayed func(body []byte) []byte
}

// idempotent is the Idempotency-Key of every mutating route but order
// placement (which claims its key with the order id it answers, in
// placeOrder): a request with a key runs once per (caller, route, key) for
// IdempotencyTTL. The first request's successful answer is kept and given
// again, with Idempotent-Replayed: true, to every later one with the same key
// and the same method, path and body; another body under the key is 422.
// A duplicate that arrives while the first still runs waits for its answer,
// so concurrent duplicates cause one effect and get one answer. A request
// that fails (any status but 2xx) releases the key: it changed nothing the
// client may not retry. Without the header the route runs as before (the key
// is optional on these routes: docs/api.md says why).
func (s *Server) idempotent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		sent := c.Request().Header.Values(HeaderIdempotencyKey)
		if len(sent) == 0 {
			return next(c)
		}
		if len(sent) > 1 || !ValidIdempotencyKey(sent[0]) {
			return errInvalidIdempotencyKey
		}
		key := sent[0]
		claims, ok := auth.FromContext(c.Request().Context())
		if !ok {
			return auth.ErrMissingToken
		}
		req := c.Request()
		// The body is read to fingerprint it and handed on unread: one past
		// the limit lets the route answer 413 as it would without a key.
		body, err := io.ReadAll(io.LimitReader(req.Body, s.BodyLimit+1))
		if err != nil {
			return newError(http.StatusBadRequest, "unreadable_body", "could not read the request body")
		}
		req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), req.Body))
		if int64(len(body)) > s.BodyLimit {
			return next(c)
		}
		k := requestKey{scope: claims.Subject, operation: req.Method + " " + c.Path(), key: key,
			hash: fingerprint(req.Method, req.URL.RequestURI(), body)}
		return s.once(c, k, func() error { return next(c) })
	}
}

// fingerprint is a request's identity under its key: method, path with its
// query, and body.
func fingerprint(method, uri string, body []byte) []byte {
	h := sha256.New()
	for _, p := range [][]byte{[]byte(method), []byte(uri), body} {
		h.Write(p)
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// once runs run at most once for k and answers every request of k with the
// answer of the one that ran it (idempotent says how).
func (s *Server) once(c echo.Context, k requestKey, run func() error) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	store := s.ordersStore()
	for {
		claimed, err := store.ClaimRequest(ctx, k.scope, k.operation, k.key, k.hash, keyLease, s.IdempotencyTTL)
		if err != nil {
			return err
		}
		if claimed {
			return s.runClaimed(c, k, run)
		}
		first, found, err := store.LoadRequest(ctx, k.scope, k.operation, k.key)
		if err != nil {
			return err
		}
		switch {
		case !found:
			continue // the first request failed and let the key go: claim it
		case !bytes.Equal(first.RequestHash, k.hash):
			return newError(http.StatusUnprocessableEntity, "idempotency_key_reused",
				"this Idempotency-Key was used with a different request")
		case first.Done:
			if k.replayed != nil && len(first.Body) > 0 {
				first.Body = k.replayed(first.Body)
			}
			return replay(c, first)
		}
		// The first request is still running: wait for its answer.
		select {
		case <-ctx.Done():
			return &Error{Status: http.StatusConflict, Code: "idempotency_key_in_use", RetryAfter: "1",
				Message: "a request with this Idempotency-Key is still running; retry after the Retry-After seconds"}
		case <-time.After(keyPoll):
		}
	}
}

// replay answers with a stored answer.
func replay(c echo.Context, r orders.Request) error {
	h := c.Response().Header()
	h.Set(HeaderReplayed, "true")
	if r.Location != "" {
		h.Set(echo.HeaderLocation, r.Location)
	}
	if len(r.Body) == 0 {
		return c.NoContent(r.Status)
	}
	return c.JSONBlob(r.Status, r.Body)
}

// runClaimed runs the request that claimed k, keeping its answer when it
// succeeded and releasing the key otherwise (a panic included).
func (s *Server) runClaimed(c echo.Context, k requestKey, run func() error) (err error) {
	resp := c.Response()
	rec := &teeWriter{ResponseWriter: resp.Writer}
	resp.Writer = rec
	done := false
	defer func() {
		resp.Writer = rec.ResponseWriter
		// Bookkeeping after the answer: on a context of its own, as the
		// caller may have hung up.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), db.StatementTimeout)
		defer cancel()
		store := s.ordersStore()
		var berr error
		if done {
			berr = store.CompleteRequest(ctx, k.scope, k.operation, k.key, resp.Status, rec.body.Bytes(), resp.Header().Get(echo.HeaderLocation))
		} else {
			berr = store.ReleaseRequest(ctx, k.scope, k.operation, k.key)
		}
		if berr != nil {
			// A key neither completed nor released is taken over after
			// its lease.
			s.Log.Warn("idempotency key bookkeeping", append(requestFields(c), zap.Error(berr))...)
		}
	}()
	err = run()
	done = err == nil && resp.Committed && resp.Status >= 200 && resp.Status < 300
	return err
}

// teeWriter keeps a copy of the answer it writes.
type teeWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
