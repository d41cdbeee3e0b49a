package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/orderflow/orderflow/internal/tlsconf"
)

// SMTPConfig says how to reach the mail server.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string
	Password string
	// TLS is the STARTTLS policy: "mandatory" (refuse a server without
	// it), "opportunistic" (use it when offered) or "none"; "implicit"
	// speaks TLS from the first byte (SMTPS, port 465).
	TLS string
	// From is the sender address; MessageIDDomain the right-hand side of
	// the Message-IDs (default: From's domain).
	From            string
	MessageIDDomain string
	// Timeout bounds a connection's dial and each command (default 15 s).
	Timeout time.Duration
	// TLSMinVersion is the oldest TLS version offered (TLS_MIN_VERSION;
	// zero: tlsconf's default, TLS 1.3).
	TLSMinVersion uint16
}

// ParseSMTPURL reads smtp://[user:password@]host[:port][?tls=mandatory|opportunistic|none]
// (port 587, tls mandatory by default) or smtps://... (implicit TLS, port 465).
func ParseSMTPURL(raw string) (SMTPConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return SMTPConfig{}, fmt.Errorf("SMTP_URL: %w", err)
	}
	c := SMTPConfig{Host: u.Hostname(), TLS: u.Query().Get("tls")}
	switch u.Scheme {
	case "smtp":
		c.Port = 587
	case "smtps":
		c.Port, c.TLS = 465, "implicit"
	default:
		return SMTPConfig{}, fmt.Errorf("SMTP_URL: scheme %q is neither smtp nor smtps", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if c.Port, err = strconv.Atoi(p); err != nil {
			return SMTPConfig{}, fmt.Errorf("SMTP_URL: port %q: %w", p, err)
		}
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	return c, c.validate()
}

func (c SMTPConfig) validate() error {
	if c.Host == "" {
		return errors.New("SMTP: no host")
	}
	if c.Port <= 0 || c.Port > 65535 {
		return fmt.Errorf("SMTP: port %d out of range", c.Port)
	}
	switch c.TLS {
	case "", "mandatory", "opportunistic", "none", "implicit":
	default:
		return fmt.Errorf("SMTP: tls %q is none of mandatory, opportunistic, none, implicit", c.TLS)
	}
	return nil
}

// SMTPMailer delivers messages over SMTP, rendered from the kind's
// templates (plain text and HTML). Each message carries a Message-ID made
// from its outbox row, so a message sent again after a crash between the
// server's acceptance and the outbox's record of it is recognizable as
// the same message by whoever receives it.
type SMTPMailer struct {
	cfg  SMTPConfig
	opts []mail.Option
}

// NewSMTPMailer checks cfg and returns its mailer.
func NewSMTPMailer(cfg SMTPConfig) (*SMTPMailer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.From == "" {
		return nil, errors.New("SMTP: no sender address (MAIL_FROM)")
	}
	if err := mail.NewMsg().From(cfg.From); err != nil {
		return nil, fmt.Errorf("SMTP: sender %q: %w", cfg.From, err)
	}
	if cfg.MessageIDDomain == "" {
		cfg.MessageIDDomain = cfg.From[strings.LastIndex(cfg.From, "@")+1:]
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	opts := []mail.Option{mail.WithPort(cfg.Port), mail.WithTimeout(cfg.Timeout),
		mail.WithTLSConfig(&tls.Config{ServerName: cfg.Host, MinVersion: tlsconf.Min(cfg.TLSMinVersion)})}
	switch cfg.TLS {
	case "", "mandatory":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "opportunistic":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case "implicit":
		opts = append(opts, mail.WithSSL())
	}
	if cfg.Username != "" {
		// The best mechanism the server offers; over a connection without
		// TLS (tls=none: a local relay or a development catcher) only PLAIN
		// is possible, as go-mail refuses to send a password in the clear
		// otherwise.
		auth := mail.SMTPAuthAutoDiscover
		if cfg.TLS == "none" {
			auth = mail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, mail.WithSMTPAuth(auth), mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	return &SMTPMailer{cfg: cfg, opts: opts}, nil
}

// MessageID is the Message-ID (without angle brackets) of the outbox row's
// message: the same for every attempt to send it.
func (s *SMTPMailer) MessageID(m Message) string {
	return fmt.Sprintf("notification-%d.%s@%s", m.ID, m.OrderID, s.cfg.MessageIDDomain)
}

// Send renders m and delivers it in one SMTP session. A refusal the server
// calls permanent (a 5xx for the sender or recipient) is returned as
// Permanent; anything else (no connection, a 4xx) is retried later.
func (s *SMTPMailer) Send(ctx context.Context, m Message) error {
	text, html, err := Render(m)
	if err != nil {
		return Permanent(err)
	}
	msg := mail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return Permanent(s.redact(m, fmt.Errorf("sender: %w", err)))
	}
	if err := msg.To(m.Recipient); err != nil {
		return Permanent(s.redact(m, fmt.Errorf("recipient: %w", err)))
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(s.MessageID(m))
	msg.SetDate()
	msg.SetGenHeader("X-Orderflow-Order", m.OrderID)
	msg.SetBodyString(mail.TypeTextPlain, text)
	msg.AddAlternativeString(mail.TypeTextHTML, html)

	c, err := mail.NewClient(s.cfg.Host, s.opts...)
	if err != nil {
		return Permanent(fmt.Errorf("smtp client: %w", err))
	}
	sc, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return s.redact(m, fmt.Errorf("smtp dial %s:%d: %w", s.cfg.Host, s.cfg.Port, err))
	}
	err = c.SendWithSMTPClient(sc, msg)
	// Once the server has taken the message, a failed QUIT changes nothing:
	// reporting it would send the message twice.
	_ = c.CloseWithSMTPClient(sc)
	if err != nil {
		var se *mail.SendError
		if errors.As(err, &se) && !se.IsTemp() && (se.Reason == mail.ErrSMTPRcptTo || se.Reason == mail.ErrSMTPMailFrom) {
			return Permanent(s.redact(m, fmt.Errorf("smtp refused: %w", err)))
		}
		return s.redact(m, fmt.Errorf("smtp send: %w", err))
	}
	return nil
}

// redact returns err's text without the addresses it may name (go-mail's
// errors list the recipients and the Message-ID, which reads as one): the
// error is logged and stored in the outbox row, and neither holds personal
// data.
func (s *SMTPMailer) redact(m Message, err error) error {
	text := err.Error()
	for _, secret := range []struct{ value, as string }{
		{s.MessageID(m), "<message-id>"}, {m.Recipient, "<recipient>"}, {s.cfg.From, "<sender>"}} {
		if secret.value != "" {
			text = strings.ReplaceAll(text, secret.value, secret.as)
		}
	}
	return errors.New(text)
}

// permanentError marks a failure that no retry can fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as a failure no retry fixes (an address the server
// refuses, a key missing from the keyring): the outbox gives the message
// up as dead after MaxAttempts. Other failures are retried for as long as
// they last, with backoff, and the message is never given up.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
