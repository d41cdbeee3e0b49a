package events

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"

	"github.com/orderflow/orderflow/internal/breaker"
)

// downStream is JetStream unreachable: every publish fails.
type downStream struct {
	jetstream.JetStream
	calls atomic.Int64
}

func (d *downStream) PublishMsg(context.Context, *nats.Msg, ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	d.calls.Add(1)
	return nil, nats.ErrNoResponders
}

// With NATS down, the relay's breaker opens after the design's ten
// publishes; then publishes fail at once without reaching the connection.
func TestRelayBreakerOpensWhenPublishesFail(t *testing.T) {
	js := &downStream{}
	b := breaker.New("nats", breaker.Settings{}, breaker.Options{})
	r := &Relay{JS: js, Breaker: b}
	r.defaults()
	row := outboxRow{id: 1, partition: "o-1", env: Envelope{ID: "e-1", Type: Streams[0].Subjects[0], OccurredAt: time.Now()}}
	var err error
	for range 25 {
		err = r.send(context.Background(), row)
		assert.Error(t, err)
	}
	assert.True(t, b.Open(), "breaker state %s", b.State())
	assert.EqualValues(t, 10, js.calls.Load(), "publishes past the tenth failed fast")
	assert.True(t, errors.Is(err, breaker.ErrOpen), "%v", err)
}
