// Package subscriber is a webhook subscriber of orderflow's own: an HTTP
// receiver that verifies every delivery's Standard Webhooks signature with
// the scheme's reference library (not with orderflow's signer, so a fault
// in the signer cannot hide itself), acknowledges it and records it. Both
// `orderflow-dev webhooks listen` (a subscriber for people trying the
// walk-through) and the chaos run's subscribers (which also fail on
// purpose: Mode) are this receiver.
package subscriber

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/orderflow/orderflow/activities/events"
)

// MaxBody is the largest delivery accepted; an event's envelope is a few
// kilobytes.
const MaxBody = 1 << 20

// Mode is how the receiver answers deliveries for now: as a healthy
// subscriber, or failing one of the ways a real one fails.
type Mode string

// The modes. ModeRefused is the Server's: its listener is closed, so a
// delivery's connection is refused.
const (
	ModeOK      Mode = ""
	Mode5xx     Mode = "5xx"     // every delivery answered 503, unacknowledged
	ModeTimeout Mode = "timeout" // every delivery held unanswered until the sender gives up
	ModeRefused Mode = "refused" // nothing listens
)

// FailModes are the ways a subscriber fails, in the order the chaos run
// takes them.
var FailModes = []Mode{Mode5xx, ModeTimeout, ModeRefused}

// Delivery is one verified, acknowledged delivery.
type Delivery struct {
	// ID is the webhook-id header: the event's id, the same on every retry.
	ID       string          `json:"id"`
	Envelope events.Envelope `json:"envelope"`
	At       time.Time       `json:"at"`
	// Duplicate: an earlier delivery of the same id was acknowledged; a
	// subscriber drops it.
	Duplicate bool `json:"duplicate"`
}

// Receiver is the http.Handler of a subscriber holding one signing secret.
// A delivery is acknowledged (204) only once its signature verifies; a
// request without the three headers, or with malformed ones, gets 400; one
// whose signature does not match, or whose timestamp is more than 5 minutes
// from the receiver's clock (a replayed capture), 401; a body that verifies
// but is no event envelope, 400.
type Receiver struct {
	wh *standardwebhooks.Webhook
	// OnDelivery, when set, is called with each acknowledged delivery,
	// before the answer is written.
	OnDelivery func(Delivery)
	// OnRefusal, when set, is called with each delivery not acknowledged:
	// the status answered and why.
	OnRefusal func(status int, reason string)

	mu       sync.Mutex
	mode     Mode
	release  chan struct{} // closed when a timeout window ends
	acked    map[string]bool
	records  []Delivery
	refusals map[int]int // status -> count of deliveries not acknowledged
}

// New returns a receiver verifying with secret (whsec_<base64>).
func New(secret string) (*Receiver, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, fmt.Errorf("subscriber: the secret must be whsec_<base64>: %w", err)
	}
	return &Receiver{wh: wh, acked: map[string]bool{}, refusals: map[int]int{}, release: make(chan struct{})}, nil
}

// SetSecret replaces the secret deliveries are verified with (a
// subscriber that learns its endpoint's secret only once it listens).
func (r *Receiver) SetSecret(secret string) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return fmt.Errorf("subscriber: the secret must be whsec_<base64>: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.wh = wh
	return nil
}

// SetMode changes how deliveries are answered from now on; leaving
// ModeTimeout answers the deliveries it held (503).
func (r *Receiver) SetMode(m Mode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mode == ModeTimeout && m != ModeTimeout {
		close(r.release)
		r.release = make(chan struct{})
	}
	r.mode = m
}

// Deliveries are the acknowledged deliveries, in the order they arrived.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.records...)
}

// Refusals counts the deliveries not acknowledged, by the status answered.
func (r *Receiver) Refusals() map[int]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[int]int, len(r.refusals))
	for k, v := range r.refusals {
		out[k] = v
	}
	return out
}

type problem struct {
	status int
	msg    string
}

// ServeHTTP verifies and records one delivery.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.refuse(w, problem{http.StatusMethodNotAllowed, "deliveries are POSTed"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBody))
	if err != nil {
		r.refuse(w, problem{http.StatusRequestEntityTooLarge, "body over 1 MiB, or unreadable"})
		return
	}
	r.mu.Lock()
	mode, release, wh := r.mode, r.release, r.wh
	r.mu.Unlock()
	switch mode {
	case Mode5xx:
		r.refuse(w, problem{http.StatusServiceUnavailable, "failing on purpose"})
		return
	case ModeTimeout:
		select {
		case <-req.Context().Done():
		case <-release:
		}
		r.refuse(w, problem{http.StatusServiceUnavailable, "held on purpose"})
		return
	}
	if p := verify(wh, body, req.Header); p != nil {
		r.refuse(w, *p)
		return
	}
	var env events.Envelope
	if err := json.Unmarshal(body, &env); err != nil || env.ID == "" || env.Type == "" {
		r.refuse(w, problem{http.StatusBadRequest, "the body is not an orderflow event envelope"})
		return
	}
	d := Delivery{ID: req.Header.Get("webhook-id"), Envelope: env, At: time.Now()}
	if d.ID != env.ID {
		r.refuse(w, problem{http.StatusBadRequest, fmt.Sprintf("webhook-id %q is not the envelope's id %q", d.ID, env.ID)})
		return
	}
	r.mu.Lock()
	d.Duplicate = r.acked[d.ID]
	r.acked[d.ID] = true
	r.records = append(r.records, d)
	r.mu.Unlock()
	if r.OnDelivery != nil {
		r.OnDelivery(d)
	}
	w.WriteHeader(http.StatusNoContent)
}

// verify checks the signature and the timestamp with the reference
// library, mapping its errors to the answer.
func verify(wh *standardwebhooks.Webhook, body []byte, h http.Header) *problem {
	err := wh.Verify(body, h)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, standardwebhooks.ErrRequiredHeaders), errors.Is(err, standardwebhooks.ErrInvalidHeaders):
		return &problem{http.StatusBadRequest, "webhook-id, webhook-timestamp and webhook-signature are required and well-formed"}
	case errors.Is(err, standardwebhooks.ErrMessageTooOld), errors.Is(err, standardwebhooks.ErrMessageTooNew):
		return &problem{http.StatusUnauthorized, "webhook-timestamp is more than 5 minutes from this clock"}
	default:
		return &problem{http.StatusUnauthorized, "no webhook-signature matches the secret"}
	}
}

func (r *Receiver) refuse(w http.ResponseWriter, p problem) {
	r.mu.Lock()
	r.refusals[p.status]++
	r.mu.Unlock()
	if r.OnRefusal != nil {
		r.OnRefusal(p.status, p.msg)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(p.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": p.msg})
}

// Server serves a Receiver on one address and can stop listening for a
// while (ModeRefused) and listen again on the same address.
type Server struct {
	*Receiver
	addr string

	mu  sync.Mutex
	srv *http.Server
}

// Listen serves rec on addr ("127.0.0.1:0" for a free port); Addr is the
// address it got.
func Listen(addr string, rec *Receiver) (*Server, error) {
	s := &Server{Receiver: rec, addr: addr}
	if err := s.listen(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) listen() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("subscriber: listen on %s: %w", s.addr, err)
	}
	s.addr = ln.Addr().String() // a port of 0 becomes the one given, kept when listening again
	srv := &http.Server{Handler: s.Receiver, ReadHeaderTimeout: 10 * time.Second}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// Addr is the address served (host:port).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// SetMode switches the receiver's mode; into ModeRefused it closes the
// listener and every connection, out of it it listens again.
func (s *Server) SetMode(m Mode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m == ModeRefused {
		s.Receiver.SetMode(ModeOK)
		if s.srv != nil {
			err := s.srv.Close()
			s.srv = nil
			return err
		}
		return nil
	}
	s.Receiver.SetMode(m)
	if s.srv == nil {
		return s.listen()
	}
	return nil
}

// Close stops serving.
func (s *Server) Close(ctx context.Context) error {
	s.Receiver.SetMode(ModeOK) // releases held deliveries
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	s.srv = nil
	return err
}
