package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/webhooks"
)

// syncBuffer is the command's output, written by its handlers while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// `orderflow-dev webhooks listen` acknowledges a delivery signed as
// orderflow signs it and prints the event; a tampered one and a stale one
// are refused (401) and printed as refused; bad arguments are refused
// before it listens.
func TestWebhooksListenPrintsVerifiedEventsAndRefusesForgedOnes(t *testing.T) {
	secret, err := webhooks.NewSecret()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- listenWebhooks(ctx, &out, []string{"listen", "--secret", secret, "--addr", "127.0.0.1:0"}, func(a string) { addrs <- a })
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("listen ended: %v", err)
	}
	const body = `{"id":"42","type":"order.created","version":1,"occurred_at":"2026-12-07T09:00:00Z","region":"local","order_id":"o-9","data":{"total_cents":2490}}`
	send := func(b string, at time.Time) int {
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(b))
		require.NoError(t, err)
		require.NoError(t, webhooks.SetHeaders(req.Header, []string{secret}, "42", at, []byte(body)))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusNoContent, send(body, time.Now()))
	assert.Equal(t, http.StatusUnauthorized, send(strings.Replace(body, "2490", "1", 1), time.Now()), "tampered")
	assert.Equal(t, http.StatusUnauthorized, send(body, time.Now().Add(-time.Hour)), "stale")
	cancel()
	require.NoError(t, <-done)

	printed := out.String()
	assert.Contains(t, printed, "verified webhook-id 42 order.created order o-9\n")
	assert.Contains(t, printed, `"total_cents":2490`)
	assert.Equal(t, 1, strings.Count(printed, "verified "), printed)
	assert.Contains(t, printed, "refused 401: no webhook-signature matches the secret")
	assert.Contains(t, printed, "refused 401: webhook-timestamp is more than 5 minutes from this clock")

	for _, bad := range [][]string{{}, {"serve"}, {"listen"}, {"listen", "--secret", "not-a-secret"}, {"listen", "--secret", secret, "extra"}} {
		assert.Error(t, listenWebhooks(context.Background(), &out, bad, nil), "%q", bad)
	}
}
