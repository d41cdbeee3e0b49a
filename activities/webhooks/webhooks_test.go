package webhooks_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	hooks "github.com/orderflow/orderflow/activities/webhooks"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// A signature made with each of two secrets verifies with either one in the
// reference library, and with neither once the body or the id changes.
func TestSignaturesVerifyWithTheReferenceLibraryUnderEitherSecret(t *testing.T) {
	a, err := hooks.NewSecret()
	require.NoError(t, err)
	b, err := hooks.NewSecret()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(a, "whsec_"))
	body := []byte(`{"id":"7","type":"order.created"}`)
	h := http.Header{}
	require.NoError(t, hooks.SetHeaders(h, []string{a, b}, "7", time.Now(), body))
	for _, s := range []string{a, b} {
		wh, err := standardwebhooks.NewWebhook(s)
		require.NoError(t, err)
		assert.NoError(t, wh.Verify(body, h))
		assert.Error(t, wh.Verify([]byte(`{"id":"7","type":"order.cancelled"}`), h), "tampered body")
		h2 := h.Clone()
		h2.Set(hooks.HeaderID, "8")
		assert.Error(t, wh.Verify(body, h2), "another message id")
	}
	c, err := hooks.NewSecret()
	require.NoError(t, err)
	wh, err := standardwebhooks.NewWebhook(c)
	require.NoError(t, err)
	assert.Error(t, wh.Verify(body, h), "a secret that did not sign")
	_, err = hooks.Sign([]string{"not-a-secret"}, "7", time.Now(), body)
	assert.ErrorIs(t, err, hooks.ErrBadSecret)
}

// Deliveries do not connect to the platform's own network unless allowed:
// a loopback receiver is refused, and reached when private addresses are
// allowed (as in development).
func TestDeliveriesRefusePrivateAddressesUnlessAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	_, err := hooks.NewHTTPClient(2*time.Second, false).Post(srv.URL, "application/json", strings.NewReader("{}"))
	require.Error(t, err)
	assert.True(t, errors.Is(err, hooks.ErrPrivateAddress), "%v", err)
	res, err := hooks.NewHTTPClient(2*time.Second, true).Post(srv.URL, "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusNoContent, res.StatusCode)
}

// A redirect is not followed: the endpoint's URL is where the event goes.
func TestARedirectIsNotFollowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data", http.StatusFound)
	}))
	defer srv.Close()
	res, err := hooks.NewHTTPClient(2*time.Second, true).Post(srv.URL, "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusFound, res.StatusCode)
}

// Rotation keeps at most two secrets: the endpoint shows the overlap's end,
// and a rotation with none leaves no previous secret.
func TestRotationKeepsThePreviousSecretForTheOverlapOnly(t *testing.T) {
	st := hooks.Store{DB: testkit.DB(t)}
	ctx := context.Background()
	ep, s1, err := st.Create(ctx, "https://rotation.orderflow.invalid/hook", "rotation", []string{"order.created"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Delete(ctx, ep.ID) })
	assert.Nil(t, ep.PreviousExpiresAt)
	ep, s2, err := st.Rotate(ctx, ep.ID, time.Hour)
	require.NoError(t, err)
	assert.NotEqual(t, s1, s2)
	require.NotNil(t, ep.PreviousExpiresAt)
	assert.WithinDuration(t, time.Now().Add(time.Hour), *ep.PreviousExpiresAt, time.Minute)
	ep, _, err = st.Rotate(ctx, ep.ID, 0)
	require.NoError(t, err)
	assert.Nil(t, ep.PreviousExpiresAt, "no overlap: the previous secret is retired at once")
	_, _, err = st.Rotate(ctx, "00000000-0000-0000-0000-000000000000", time.Hour)
	assert.ErrorIs(t, err, hooks.ErrNotFound)
}

// Send records each attempt; a failure starts the endpoint's failure
// record, a success clears it, and a failure past DisableAfter disables the
// endpoint and ends the delivery (non-retryable).
func TestSendRecordsAttemptsAndTheFailureRecord(t *testing.T) {
	pool := testkit.DB(t)
	ctx := context.Background()
	// Other suites' dispatchers may deliver their events here too (the
	// database is shared): they get the same answer, and the log is read
	// for this test's event only.
	var status atomic.Int32
	status.Store(http.StatusBadGateway)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) }))
	defer srv.Close()
	st := hooks.Store{DB: pool}
	ep, _, err := st.Create(ctx, srv.URL, "send", []string{"order.created"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Delete(ctx, ep.ID) })
	var eventID int64
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO event_outbox (type, key, partition, region, payload, webhooks_at)
		VALUES ('order.created', 'order.created:send-' || gen_random_uuid(), 'send', 'webhooks-send-test', '{}', now()) RETURNING id`).Scan(&eventID))
	acts := &hooks.Activities{DB: pool, HTTP: hooks.NewHTTPClient(2*time.Second, true), DisableAfter: time.Hour}
	in := hooks.SendInput{EndpointID: ep.ID, EventID: eventID}

	_, err = acts.Send(ctx, in)
	require.Error(t, err)
	var app *temporal.ApplicationError
	assert.False(t, errors.As(err, &app) && app.NonRetryable(), "a failure is retried: %v", err)
	got, err := st.Get(ctx, ep.ID)
	require.NoError(t, err)
	require.NotNil(t, got.FailingSince)
	assert.True(t, got.Enabled)

	status.Store(http.StatusNoContent)
	res, err := acts.Send(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, http.StatusNoContent, res.StatusCode)
	got, err = st.Get(ctx, ep.ID)
	require.NoError(t, err)
	assert.Nil(t, got.FailingSince, "a success clears the failure record")

	status.Store(http.StatusInternalServerError)
	acts.DisableAfter = time.Microsecond
	_, err = acts.Send(ctx, in) // starts the record
	require.Error(t, err)
	_, err = acts.Send(ctx, in) // past DisableAfter: disabled
	require.ErrorAs(t, err, &app)
	assert.Equal(t, hooks.ErrTypeEndpointGone, app.Type())
	assert.True(t, app.NonRetryable())
	got, err = st.Get(ctx, ep.ID)
	require.NoError(t, err)
	assert.False(t, got.Enabled)
	assert.Contains(t, got.DisabledReason, "failing since")

	all, err := st.Deliveries(ctx, ep.ID, 0, 100)
	require.NoError(t, err)
	var log []hooks.Attempt
	for _, a := range all {
		if a.EventID == eventID {
			log = append(log, a)
		}
	}
	require.Len(t, log, 4)
	assert.Equal(t, []int{500, 500, 204, 502}, []int{log[0].StatusCode, log[1].StatusCode, log[2].StatusCode, log[3].StatusCode}, "newest first")
	assert.Contains(t, log[3].Error, "502")
	assert.Empty(t, log[2].Error)
}
