package config

import (
	"strings"
	"testing"
)

func TestMessagingAsLoggedHoldsNoSecret(t *testing.T) {
	t.Setenv("SMTP_URL", "smtp://orders%40shop.example:smtp-s3cret@mail.example.com:587")
	t.Setenv("NATS_URL", "nats://relay:nats-s3cret@nats:4222")
	s := LoadMessaging().String()
	for _, secret := range []string{"smtp-s3cret", "nats-s3cret", "orders@shop.example", "orders%40shop.example"} {
		if strings.Contains(s, secret) {
			t.Errorf("messaging settings show %q: %s", secret, s)
		}
	}
	if !strings.Contains(s, "mail.example.com:587") || !strings.Contains(s, "nats:4222") {
		t.Errorf("messaging settings lost an address: %s", s)
	}
}
