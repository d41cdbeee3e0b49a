package wire_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/orderflow/orderflow/activities/fulfillment/wire"
)

func TestVerifyTakesOnlyTheCarriersSignatureOverTheBodyAndItsRecentTime(t *testing.T) {
	secret := []byte("s3cret")
	body := []byte(`{"event_id":"e1","type":"picked_up","at":"2026-12-07T00:00:00Z"}`)
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	signedAt := now.Add(-time.Minute)
	good := wire.Sign(secret, signedAt, body)
	ts := strconv.FormatInt(signedAt.Unix(), 10)
	moved := strings.Replace(good, "t="+ts, "t="+strconv.FormatInt(signedAt.Unix()+1, 10), 1)
	for _, c := range []struct {
		name   string
		secret []byte
		header string
		body   []byte
		want   error
	}{
		{"signed a minute ago", secret, good, body, nil},
		{"no header", secret, "", body, wire.ErrNoSignature},
		{"another secret", []byte("other"), good, body, wire.ErrBadSignature},
		{"no secret configured", nil, good, body, wire.ErrBadSignature},
		{"a changed body", secret, good, append([]byte(" "), body...), wire.ErrBadSignature},
		{"a changed time", secret, moved, body, wire.ErrBadSignature},
		{"garbage", secret, "v1=zz,t=x", body, wire.ErrBadSignature},
		{"replayed ten minutes later", secret, wire.Sign(secret, now.Add(-10*time.Minute), body), body, wire.ErrStale},
		{"from the future", secret, wire.Sign(secret, now.Add(10*time.Minute), body), body, wire.ErrStale},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, wire.Verify(c.secret, c.header, c.body, now, 5*time.Minute))
		})
	}
}
