package events

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream is one JetStream stream: a family of event types.
type Stream struct {
	Name     string
	Subjects []string
}

// Streams are the families of event types, one JetStream stream each.
var Streams = []Stream{
	{Name: "ORDERS", Subjects: []string{OrderCreated, OrderConfirmed, OrderFailed, OrderCancelled, OrderShipped, OrderDelivered, OrderDisputed}},
	{Name: "PAYMENTS", Subjects: []string{PaymentProcessed, PaymentRefunded}},
	{Name: "INVENTORY", Subjects: []string{InventoryUpdated}},
	{Name: "ANALYTICS", Subjects: []string{AnalyticsEvents}},
}

// StreamOf returns the stream that holds events of type typ.
func StreamOf(typ string) (string, bool) {
	for _, s := range Streams {
		for _, sub := range s.Subjects {
			if sub == typ {
				return s.Name, true
			}
		}
	}
	return "", false
}

// Config says where the event stream lives and how its streams are kept.
type Config struct {
	// URL is the NATS server (or servers, comma separated).
	URL string
	// Replicas of each stream: 1 on one server, 3 on a cluster.
	Replicas int
	// MaxAge is how long a stream keeps an event (default 7 days).
	MaxAge time.Duration
	// DuplicateWindow is how long JetStream remembers a message id to drop
	// a second copy (default 10 minutes): it must outlast the time a relay
	// can take between publishing a batch and recording it as published.
	DuplicateWindow time.Duration
}

// Connect dials NATS and returns its JetStream context. The connection
// retries forever in the background: a server that is down at start or goes
// away later only delays publishing, and its state shows in Status.
func Connect(cfg Config, name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(cfg.URL, nats.Name(name), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond), nats.ReconnectJitter(250*time.Millisecond, time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats %s: %w", redact(cfg.URL), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// EnsureStreams creates the streams, or updates them to cfg's settings.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	for _, s := range Streams {
		sc := jetstream.StreamConfig{Name: s.Name, Subjects: s.Subjects, Storage: jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy, Replicas: max(cfg.Replicas, 1),
			MaxAge: cfg.MaxAge, Duplicates: cfg.DuplicateWindow}
		if sc.MaxAge <= 0 {
			sc.MaxAge = 7 * 24 * time.Hour
		}
		if sc.Duplicates <= 0 {
			sc.Duplicates = 10 * time.Minute
		}
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", s.Name, err)
		}
	}
	return nil
}

// redact hides the password of a nats:// URL.
func redact(u string) string {
	if at := strings.LastIndex(u, "@"); at > 0 {
		if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
			return u[:scheme+3] + "xxxxx" + u[at:]
		}
	}
	return u
}
