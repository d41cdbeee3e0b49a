// Package carrier is a simulated parcel carrier for development and tests,
// as paysim is a simulated card provider: fulfillment hands it shipments
// over HTTP (the wire in activities/fulfillment), and it posts signed
// events about each back to the gateway on a schedule (picked_up,
// in_transit, then delivered, or lost at a configured rate), re-sending an
// event until the gateway answers it. Its state lives in memory: a restart
// forgets the parcels it held, as a carrier losing its manifest would.
//
//	POST   /v1/shipments       take a shipment (fulfillment.Handover), idempotent by shipment_id
//	DELETE /v1/shipments/{id}  give back one not yet picked up (204; 409 once picked up; 404 unknown)
//	GET    /v1/shipments/{id}  the shipment's state
//	GET    /admin/schedule     the delays and the lost rate
//	PUT    /admin/schedule     change them for shipments taken from now on
//	GET    /health
package carrier

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/activities/fulfillment/wire"
)

// Schedule is when a taken shipment's events follow each other, and the
// fraction of parcels lost in transit.
type Schedule struct {
	PickupAfter  Duration `json:"pickup_after"`
	TransitAfter Duration `json:"transit_after"`
	DeliverAfter Duration `json:"deliver_after"`
	LostRate     float64  `json:"lost_rate"`
}

// Duration is a time.Duration written as "1.5s" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Parcel is a shipment the carrier holds.
type Parcel struct {
	fulfillment.Handover
	TrackingNumber string   `json:"tracking_number"`
	Status         string   `json:"status"` // handed_over, picked_up, in_transit, delivered, lost, withdrawn
	Sent           []string `json:"sent"`   // events the gateway accepted, in order

	stop chan struct{}
}

// Server is the simulated carrier.
type Server struct {
	// GatewayURL is where events go: {GatewayURL}/v1/shipments/{id}/events.
	GatewayURL string
	Secret     []byte
	Log        *zap.Logger
	Client     *http.Client

	mu       sync.Mutex
	schedule Schedule
	parcels  map[string]*Parcel
	wg       sync.WaitGroup
	closed   chan struct{}
}

// New returns a carrier posting to gatewayURL with secret on schedule.
func New(gatewayURL string, secret []byte, schedule Schedule, log *zap.Logger) *Server {
	return &Server{GatewayURL: strings.TrimRight(gatewayURL, "/"), Secret: secret, Log: log, schedule: schedule,
		Client: &http.Client{Timeout: 10 * time.Second}, parcels: map[string]*Parcel{}, closed: make(chan struct{})}
}

// Close stops every schedule and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// ServeHTTP routes the carrier's API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/health":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case r.URL.Path == "/v1/shipments" && r.Method == http.MethodPost:
		s.take(w, r)
	case strings.HasPrefix(r.URL.Path, "/v1/shipments/") && r.Method == http.MethodDelete:
		s.withdraw(w, strings.TrimPrefix(r.URL.Path, "/v1/shipments/"))
	case strings.HasPrefix(r.URL.Path, "/v1/shipments/") && r.Method == http.MethodGet:
		s.show(w, strings.TrimPrefix(r.URL.Path, "/v1/shipments/"))
	case r.URL.Path == "/admin/schedule" && r.Method == http.MethodGet:
		s.mu.Lock()
		sc := s.schedule
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, sc)
	case r.URL.Path == "/admin/schedule" && r.Method == http.MethodPut:
		var sc Schedule
		if err := json.NewDecoder(r.Body).Decode(&sc); err != nil || sc.LostRate < 0 || sc.LostRate > 1 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad schedule"})
			return
		}
		s.mu.Lock()
		s.schedule = sc
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, sc)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	}
}

func (s *Server) take(w http.ResponseWriter, r *http.Request) {
	var h fulfillment.Handover
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&h); err != nil || h.ShipmentID == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad handover"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.parcels[h.ShipmentID]; ok {
		writeJSON(w, http.StatusOK, fulfillment.Handed{TrackingNumber: p.TrackingNumber})
		return
	}
	p := &Parcel{Handover: h, TrackingNumber: "SIM-" + strings.ToUpper(strings.ReplaceAll(h.ShipmentID, "-", "")[:12]),
		Status: fulfillment.ShipmentHandedOver, stop: make(chan struct{})}
	s.parcels[h.ShipmentID] = p
	s.wg.Add(1)
	go s.run(p, s.schedule)
	s.Log.Info("shipment taken", zap.String("shipment_id", h.ShipmentID), zap.String("order_id", h.OrderID),
		zap.String("tracking_number", p.TrackingNumber))
	writeJSON(w, http.StatusOK, fulfillment.Handed{TrackingNumber: p.TrackingNumber})
}

func (s *Server) withdraw(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.parcels[id]
	switch {
	case !ok:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such shipment"})
	case p.Status == "withdrawn":
		w.WriteHeader(http.StatusNoContent)
	case p.Status != fulfillment.ShipmentHandedOver:
		writeJSON(w, http.StatusConflict, map[string]string{"error": "already picked up"})
	default:
		p.Status = "withdrawn"
		close(p.stop)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) show(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.parcels[id]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such shipment"})
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// run lives one parcel's schedule: each event after its delay, each posted
// until the gateway answers it.
func (s *Server) run(p *Parcel, sc Schedule) {
	defer s.wg.Done()
	last := wire.EventDelivered
	if sc.LostRate > 0 && rand.Float64() < sc.LostRate {
		last = wire.EventLost
	}
	steps := []struct {
		after time.Duration
		event string
	}{{time.Duration(sc.PickupAfter), wire.EventPickedUp}, {time.Duration(sc.TransitAfter), wire.EventInTransit},
		{time.Duration(sc.DeliverAfter), last}}
	for _, st := range steps {
		select {
		case <-time.After(st.after):
		case <-p.stop:
			return
		case <-s.closed:
			return
		}
		s.mu.Lock()
		if p.Status == "withdrawn" {
			s.mu.Unlock()
			return
		}
		p.Status = st.event
		s.mu.Unlock()
		if !s.post(p, st.event) {
			return
		}
	}
}

// post sends one event until the gateway answers 2xx or a 4xx other than
// 429 (nothing to retry), backing off up to 5 s; false when the carrier closed.
func (s *Server) post(p *Parcel, event string) bool {
	body, _ := json.Marshal(wire.Event{EventID: p.ShipmentID + ":" + event, Type: event, At: time.Now().UTC(),
		TrackingNumber: p.TrackingNumber})
	url := s.GatewayURL + "/v1/shipments/" + p.ShipmentID + "/events"
	for wait := 200 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		status, err := s.send(url, body)
		switch {
		case err == nil && status < 300:
			s.mu.Lock()
			p.Sent = append(p.Sent, event)
			s.mu.Unlock()
			s.Log.Info("event delivered", zap.String("shipment_id", p.ShipmentID), zap.String("type", event))
			return true
		case err == nil && status >= 400 && status < 500 && status != http.StatusTooManyRequests:
			s.Log.Warn("gateway refused an event", zap.String("shipment_id", p.ShipmentID), zap.String("type", event), zap.Int("status", status))
			return true
		}
		s.Log.Debug("event not delivered yet", zap.String("shipment_id", p.ShipmentID), zap.String("type", event), zap.Int("status", status), zap.Error(err))
		select {
		case <-time.After(wait):
		case <-s.closed:
			return false
		}
	}
}

func (s *Server) send(url string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("event request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	// Signed as it goes out, so a re-send carries a fresh time.
	req.Header.Set(wire.SignatureHeader, wire.Sign(s.Secret, time.Now(), body))
	res, err := s.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	return res.StatusCode, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
