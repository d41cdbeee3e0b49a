package notify_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/notify"
	"github.com/orderflow/orderflow/internal/breaker"
)

type failingMailer struct {
	calls atomic.Int64
	err   error
}

func (m *failingMailer) Send(context.Context, notify.Message) error { m.calls.Add(1); return m.err }

// A mail server that fails every send opens the breaker after the design's
// ten calls; then sends fail at once without reaching it.
func TestGuardedMailerOpensOnAFailingServer(t *testing.T) {
	down := &failingMailer{err: errors.New("dial tcp 127.0.0.1:1025: connection refused")}
	b := notify.NewSMTPBreaker()
	m := notify.Guarded(down, b)
	for range 25 {
		assert.Error(t, m.Send(context.Background(), notify.Message{}))
	}
	assert.True(t, b.Open(), "breaker state %s", b.State())
	assert.EqualValues(t, 10, down.calls.Load(), "calls past the tenth failed fast")
	require.ErrorIs(t, m.Send(context.Background(), notify.Message{}), breaker.ErrOpen)
}

// A permanent refusal (an unknown recipient) is the server's answer: it
// never opens the breaker.
func TestGuardedMailerIgnoresPermanentRefusals(t *testing.T) {
	err := notify.Permanent(errors.New("550 no such user"))
	require.True(t, notify.IsPermanent(err))
	refusing := &failingMailer{err: err}
	b := notify.NewSMTPBreaker()
	m := notify.Guarded(refusing, b)
	for range 25 {
		assert.True(t, notify.IsPermanent(m.Send(context.Background(), notify.Message{})))
	}
	assert.False(t, b.Open())
	assert.EqualValues(t, 25, refusing.calls.Load())
}
