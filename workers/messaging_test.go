package workers

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/notify"
)

func TestMessagingPicksTheMailerAndRefusesBadSettings(t *testing.T) {
	m, stream, err := Messaging(MessagingConfig{MailFrom: "orders@example.com"})
	require.NoError(t, err)
	assert.Nil(t, m, "no SMTP: the caller's development mailer")
	assert.Nil(t, stream, "no NATS_URL: the events wait in their outbox")

	m, _, err = Messaging(MessagingConfig{SMTPURL: "smtp://mail.example.com:2525?tls=opportunistic", MailFrom: "orders@example.com"})
	require.NoError(t, err)
	assert.IsType(t, &notify.SMTPMailer{}, m)
	m, _, err = Messaging(MessagingConfig{SMTPHost: "mail.example.com", SMTPPort: 587, SMTPTLS: "mandatory", MailFrom: "orders@example.com"})
	require.NoError(t, err)
	assert.IsType(t, &notify.SMTPMailer{}, m)

	for name, bad := range map[string]MessagingConfig{
		"SMTP_URL": {SMTPURL: "http://mail.example.com", MailFrom: "orders@example.com"},
		"tls":      {SMTPHost: "mail.example.com", SMTPPort: 587, SMTPTLS: "sometimes", MailFrom: "orders@example.com"},
		"sender":   {SMTPHost: "mail.example.com", SMTPPort: 587, MailFrom: "not an address"},
		"port":     {SMTPHost: "mail.example.com", SMTPPort: 0, MailFrom: "orders@example.com"},
	} {
		_, _, err := Messaging(bad)
		require.Error(t, err, name)
		assert.True(t, strings.Contains(err.Error(), name), "%s: %v", name, err)
	}
}
