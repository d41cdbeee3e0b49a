// Package wire is what the carrier and orderflow say to each other about
// shipments: the carrier's events and their HMAC-SHA256 signature. It
// depends on the standard library only, so the Go client and the simulated
// carrier use it without the activities' dependencies.
package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Carrier event types, in the order a parcel lives them. Lost ends a
// shipment that left its warehouse, like delivered.
const (
	EventPickedUp  = "picked_up"
	EventInTransit = "in_transit"
	EventDelivered = "delivered"
	EventLost      = "lost"
)

// ValidEvent reports whether t is a carrier event type.
func ValidEvent(t string) bool {
	switch t {
	case EventPickedUp, EventInTransit, EventDelivered, EventLost:
		return true
	}
	return false
}

// Event is the body of a carrier's POST /v1/shipments/{id}/events.
type Event struct {
	EventID        string    `json:"event_id"`
	Type           string    `json:"type"`
	At             time.Time `json:"at"`
	TrackingNumber string    `json:"tracking_number,omitempty"`
}

// SignatureHeader carries a carrier event's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">". The time is
// signed with the body, so a captured request cannot be replayed once it is
// older than the receiver's tolerance.
const SignatureHeader = "Carrier-Signature"

// Sign returns the SignatureHeader value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Signature errors; each means the request is not the carrier's.
var (
	ErrNoSignature  = errors.New("missing " + SignatureHeader + " header")
	ErrBadSignature = errors.New("signature does not match")
	ErrStale        = errors.New("signature timestamp outside the tolerance")
)

// Verify checks a SignatureHeader value against the raw body: the HMAC in
// constant time, then the signed time within tolerance of now either way.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if header == "" {
		return ErrNoSignature
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 || len(secret) == 0 {
		return ErrBadSignature
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}
