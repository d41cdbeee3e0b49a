package config

import (
	"fmt"
	"net/url"
	"time"
)

// Messaging configures what a worker sends out besides its sagas: the
// notification outbox's mail server and the event stream. Without SMTP the
// development mailer logs each message; without NATS_URL the events wait in
// their outbox (nothing is lost: a relay started later publishes them).
type Messaging struct {
	// SMTPURL is the mail server as one URL (SMTP_URL):
	// smtp://user:password@host:587?tls=mandatory|opportunistic|none, or
	// smtps://... for TLS from the first byte. Without it, SMTPHost and the
	// other SMTP_* parts say the same.
	SMTPURL      string
	SMTPHost     string // SMTP_HOST
	SMTPPort     int    // SMTP_PORT (default 587)
	SMTPUsername string // SMTP_USERNAME
	SMTPPassword string // SMTP_PASSWORD (secret)
	SMTPTLS      string // SMTP_TLS: mandatory (default), opportunistic, none, implicit
	// MailFrom is the sender of customer messages (MAIL_FROM).
	MailFrom string
	// NATSURL is the NATS server with JetStream the event relay publishes
	// to (NATS_URL, comma separated for a cluster).
	NATSURL string
	// EventsReplicas is each stream's replica count (EVENTS_REPLICAS: 1 on
	// one server, 3 on a cluster); EventsMaxAge how long a stream keeps an
	// event (EVENTS_MAX_AGE, default 168h); EventsDuplicateWindow how long
	// JetStream remembers a message id (EVENTS_DUPLICATE_WINDOW, default 10m).
	EventsReplicas        int
	EventsMaxAge          time.Duration
	EventsDuplicateWindow time.Duration
	// Analytics runs the analytics consumer in the worker
	// (EVENTS_ANALYTICS, default true; it needs NATS_URL).
	Analytics bool
}

// LoadMessaging reads the mail and event stream settings.
func LoadMessaging() Messaging {
	return Messaging{
		SMTPURL:               Env("SMTP_URL", ""),
		SMTPHost:              Env("SMTP_HOST", ""),
		SMTPPort:              EnvInt("SMTP_PORT", 587),
		SMTPUsername:          Env("SMTP_USERNAME", ""),
		SMTPPassword:          Env("SMTP_PASSWORD", ""),
		SMTPTLS:               Env("SMTP_TLS", "mandatory"),
		MailFrom:              Env("MAIL_FROM", "orders@orderflow.localhost"),
		NATSURL:               Env("NATS_URL", ""),
		EventsReplicas:        EnvInt("EVENTS_REPLICAS", 1),
		EventsMaxAge:          EnvDuration("EVENTS_MAX_AGE", 7*24*time.Hour),
		EventsDuplicateWindow: EnvDuration("EVENTS_DUPLICATE_WINDOW", 10*time.Minute),
		Analytics:             Env("EVENTS_ANALYTICS", "true") == "true",
	}
}

// String renders the settings for the start-up log line: no credentials,
// and no address (the SMTP user is often one, and the log holds none).
func (m Messaging) String() string {
	smtp := "log"
	switch {
	case m.SMTPURL != "":
		smtp = "(unparsable SMTP_URL)"
		if u, err := url.Parse(m.SMTPURL); err == nil {
			u.User = nil
			smtp = u.String()
		}
	case m.SMTPHost != "":
		smtp = fmt.Sprintf("%s:%d tls=%s", m.SMTPHost, m.SMTPPort, m.SMTPTLS)
	}
	nats := "off"
	if m.NATSURL != "" {
		nats = Mask(m.NATSURL)
	}
	return fmt.Sprintf("mail=%s nats=%s analytics=%t", smtp, nats, m.Analytics)
}
