package paysim_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/activities/payment/paysim"
)

// A provider that dies after it read a charge: the connection closes with no
// answer and its port then refuses. Go's transport resends a request that
// carries an Idempotency-Key on a new connection, and that resend fails to
// dial; the charge must still count as possibly made (a plain error), never
// as not sent, or it would move to another provider and charge twice.
func TestChargeReadByAProviderThatThenDiedIsNeverNotSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	read := make(chan struct{})
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		r := bufio.NewReader(conn)
		// The first charge is answered, so the client keeps the connection
		// and sends the next charge on it.
		if req, err := http.ReadRequest(r); err == nil {
			_ = req.Body.Close()
			body := `{"id":"ch_1","amount":100,"currency":"usd"}`
			_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
				strconv.Itoa(len(body)) + "\r\n\r\n" + body))
		}
		_ = ln.Close() // the port refuses from now on
		if req, err := http.ReadRequest(r); err == nil {
			_ = req.Body.Close()
		}
		close(read)
		_ = conn.Close() // dies before answering
	}()

	c := paysim.NewClient("dying", "http://"+ln.Addr().String(), 2*time.Second)
	_, err = c.Charge(context.Background(), payment.ChargeRequest{IdempotencyKey: "charge-first", Token: payment.TokenVisa, AmountCents: 100, Currency: "USD"})
	require.NoError(t, err)
	_, err = c.Charge(context.Background(), payment.ChargeRequest{IdempotencyKey: "charge-dying", Token: payment.TokenVisa, AmountCents: 100, Currency: "USD"})
	<-read
	require.Error(t, err)
	assert.NotErrorIs(t, err, payment.ErrNotSent, "the provider read the request: it may have charged (%v)", err)
}

func TestChargeToAPortThatRefusesIsNotSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	c := paysim.NewClient("refused", "http://"+addr, 2*time.Second)
	_, err = c.Charge(context.Background(), payment.ChargeRequest{IdempotencyKey: "charge-refused", Token: payment.TokenVisa, AmountCents: 100, Currency: "USD"})
	assert.ErrorIs(t, err, payment.ErrNotSent)
}
