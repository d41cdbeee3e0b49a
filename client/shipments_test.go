package client_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/fulfillment/wire"
	"github.com/orderflow/orderflow/client"
)

func TestPostCarrierEventSignsTheExactBodyItSends(t *testing.T) {
	secret := []byte("whsec")
	signedAt := time.Now()
	var verified error
	var path string
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		path = r.URL.Path
		verified = wire.Verify(secret, r.Header.Get(wire.SignatureHeader), body, signedAt, time.Minute)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"event_id":"e<1>&","shipment_id":"s-1","status":"accepted","duplicate":false}`)
	})
	// Characters encoding/json escapes: the signature must cover the bytes sent.
	a, err := c.PostCarrierEvent(context.Background(), "s-1", wire.Event{EventID: "e<1>&", Type: wire.EventPickedUp, At: signedAt.UTC()}, secret, signedAt)
	require.NoError(t, err)
	assert.NoError(t, verified)
	assert.Equal(t, "/v1/shipments/s-1/events", path)
	assert.Equal(t, client.CarrierEventAccepted{EventID: "e<1>&", ShipmentID: "s-1", Status: "accepted"}, a)
}

func TestAwaitSettledStopsAtAnOrderWaitingOnItsCarrier(t *testing.T) {
	reads := 0
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		reads++
		status := orderflow.StatusPaid
		if reads > 2 {
			status = orderflow.StatusFulfilling
		}
		_, _ = io.WriteString(w, `{"order_id":"o","status":"`+status+`"}`)
	})
	o, err := c.AwaitSettled(context.Background(), "o", time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, orderflow.StatusFulfilling, o.Status)
	assert.Equal(t, 3, reads)
}
