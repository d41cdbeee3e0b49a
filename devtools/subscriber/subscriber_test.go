package subscriber

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/webhooks"
)

const body = `{"id":"4711","type":"order.confirmed","version":1,"occurred_at":"2026-12-07T09:00:00Z","region":"local","order_id":"o-1","data":{}}`

func start(t *testing.T) (*Server, string) {
	t.Helper()
	secret, err := webhooks.NewSecret()
	require.NoError(t, err)
	rec, err := New(secret)
	require.NoError(t, err)
	srv, err := Listen("127.0.0.1:0", rec)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	return srv, secret
}

// post sends body to the server as orderflow's sender does, signed with
// secrets at time at (nil secrets: no signature headers).
func post(t *testing.T, c *http.Client, srv *Server, secrets []string, id string, at time.Time, b string) (int, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+srv.Addr()+"/", bytes.NewBufferString(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if secrets != nil {
		require.NoError(t, webhooks.SetHeaders(req.Header, secrets, id, at, []byte(b)))
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// A delivery signed by orderflow's signer verifies with the reference
// library and is acknowledged; the same id again is a duplicate; a tampered
// body, a stale timestamp, another secret, missing headers and a body that
// is no envelope are refused with their statuses and never recorded.
func TestReceiverAcknowledgesSignedDeliveriesAndRefusesForgedOnes(t *testing.T) {
	srv, secret := start(t)
	other, err := webhooks.NewSecret()
	require.NoError(t, err)
	c := &http.Client{Timeout: 5 * time.Second}
	now := time.Now()
	for _, tc := range []struct {
		name    string
		secrets []string
		id      string
		at      time.Time
		body    string
		tamper  bool
		want    int
	}{
		{"signed", []string{secret}, "4711", now, body, false, http.StatusNoContent},
		{"signed during a rotation (two signatures)", []string{other, secret}, "4711", now, body, false, http.StatusNoContent},
		{"tampered body", []string{secret}, "4711", now, body, true, http.StatusUnauthorized},
		{"stale timestamp", []string{secret}, "4711", now.Add(-6 * time.Minute), body, false, http.StatusUnauthorized},
		{"timestamp from the future", []string{secret}, "4711", now.Add(6 * time.Minute), body, false, http.StatusUnauthorized},
		{"another secret", []string{other}, "4711", now, body, false, http.StatusUnauthorized},
		{"no signature headers", nil, "", now, body, false, http.StatusBadRequest},
		{"signed, but no envelope", []string{secret}, "4712", now, `{"hello":"world"}`, false, http.StatusBadRequest},
		{"webhook-id not the envelope's", []string{secret}, "4712", now, body, false, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, "http://"+srv.Addr()+"/", bytes.NewBufferString(tc.body))
			require.NoError(t, err)
			if tc.secrets != nil {
				require.NoError(t, webhooks.SetHeaders(req.Header, tc.secrets, tc.id, tc.at, []byte(tc.body)))
			}
			if tc.tamper {
				b := bytes.Replace([]byte(tc.body), []byte("confirmed"), []byte("cancelled"), 1)
				req.Body, req.ContentLength = nopCloser{bytes.NewReader(b)}, int64(len(b))
			}
			resp, err := c.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tc.want, resp.StatusCode)
		})
	}
	got := srv.Deliveries()
	require.Len(t, got, 2, "only the two signed deliveries are recorded")
	assert.Equal(t, "4711", got[0].ID)
	assert.Equal(t, "order.confirmed", got[0].Envelope.Type)
	assert.Equal(t, "o-1", got[0].Envelope.OrderID)
	assert.False(t, got[0].Duplicate)
	assert.True(t, got[1].Duplicate, "the same webhook-id again")
	assert.Equal(t, map[int]int{http.StatusUnauthorized: 4, http.StatusBadRequest: 3}, srv.Refusals())

	resp, err := c.Get("http://" + srv.Addr() + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// The failing modes fail a delivery as a broken subscriber would (503; no
// answer until the sender gives up; connection refused) and acknowledge
// nothing; back in ModeOK, on the same address, the delivery is taken.
func TestServerFailsInEachModeAndRecovers(t *testing.T) {
	srv, secret := start(t)
	addr := srv.Addr()
	send := func(timeout time.Duration) (int, error) {
		return post(t, &http.Client{Timeout: timeout}, srv, []string{secret}, "4711", time.Now(), body)
	}

	require.NoError(t, srv.SetMode(Mode5xx))
	code, err := send(5 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)

	require.NoError(t, srv.SetMode(ModeTimeout))
	_, err = send(300 * time.Millisecond)
	var te interface{ Timeout() bool }
	require.ErrorAs(t, err, &te, "held until the client gave up")
	assert.True(t, te.Timeout())

	require.NoError(t, srv.SetMode(ModeRefused))
	_, err = send(5 * time.Second)
	assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "connection refused: %v", err)

	require.NoError(t, srv.SetMode(ModeOK))
	assert.Equal(t, addr, srv.Addr(), "the same address again")
	code, err = send(5 * time.Second)
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, code)
	got := srv.Deliveries()
	require.Len(t, got, 1, "only the delivery after recovery is acknowledged")
	assert.False(t, got[0].Duplicate)
}
