package workers

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/activities/events"
	"github.com/orderflow/orderflow/activities/notify"
	"github.com/orderflow/orderflow/internal/breaker"
)

// EventStream is a worker's connection to the event stream.
type EventStream struct {
	NC        *nats.Conn
	JS        jetstream.JetStream
	Config    events.Config
	Analytics bool
	// Breaker, when set, guards the relays' publishes.
	Breaker *breaker.Breaker
}

// MessagingConfig is what the worker's outbox pool sends through: the mail
// server (SMTPURL, or SMTPHost and its parts) and the event stream (NATSURL).
type MessagingConfig struct {
	SMTPURL      string
	SMTPHost     string
	SMTPPort     int
	SMTPUsername string
	SMTPPassword string
	SMTPTLS      string
	MailFrom     string
	// NATSURL lists the NATS servers, comma-separated.
	NATSURL               string
	EventsReplicas        int
	EventsMaxAge          time.Duration
	EventsDuplicateWindow time.Duration
	Analytics             bool
	// TLSMinVersion is the oldest TLS version the SMTP client offers
	// (TLS_MIN_VERSION).
	TLSMinVersion uint16
}

// Messaging builds the mailer and the event stream cfg describes: the SMTP
// mailer when SMTPURL or SMTPHost is set (nil otherwise: the caller's
// development mailer), and a NATS connection when NATSURL is set (nil
// otherwise: the events wait in their outbox). A bad setting is an error
// naming it; NATS being down is not (the relay waits for it).
func Messaging(cfg MessagingConfig) (notify.Mailer, *EventStream, error) {
	var mailer notify.Mailer
	if cfg.SMTPURL != "" || cfg.SMTPHost != "" {
		smtp := notify.SMTPConfig{Host: cfg.SMTPHost, Port: cfg.SMTPPort, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword, TLS: cfg.SMTPTLS}
		if cfg.SMTPURL != "" {
			var err error
			if smtp, err = notify.ParseSMTPURL(cfg.SMTPURL); err != nil {
				return nil, nil, err
			}
		}
		smtp.From, smtp.TLSMinVersion = cfg.MailFrom, cfg.TLSMinVersion
		m, err := notify.NewSMTPMailer(smtp)
		if err != nil {
			return nil, nil, err
		}
		mailer = m
	}
	if cfg.NATSURL == "" {
		return mailer, nil, nil
	}
	ec := events.Config{URL: cfg.NATSURL, Replicas: cfg.EventsReplicas, MaxAge: cfg.EventsMaxAge, DuplicateWindow: cfg.EventsDuplicateWindow}
	nc, js, err := events.Connect(ec, "orderflow-worker")
	if err != nil {
		return nil, nil, err
	}
	return mailer, &EventStream{NC: nc, JS: js, Config: ec, Analytics: cfg.Analytics}, nil
}

// runEvents runs, until ctx is done, the event relays of the region and of
// the events of no order (each leads only where no other worker does), and
// the analytics consumer when asked; it closes the connection at the end.
func (s *EventStream) run(ctx context.Context, db *pgxpool.Pool, region string, log *zap.Logger) {
	var wg sync.WaitGroup
	for _, scope := range []string{region, ""} {
		r := &events.Relay{DB: db, JS: s.JS, Config: s.Config, Region: scope, Log: log, Breaker: s.Breaker}
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx) }()
	}
	if s.Analytics {
		a := &events.Analytics{JS: s.JS, Log: log}
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(ctx) }()
	}
	wg.Wait()
	_ = s.NC.Drain()
}
