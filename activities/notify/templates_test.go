package notify_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/notify"
)

func TestRenderFramesEachKindAndEscapesTheHTML(t *testing.T) {
	m := notify.Message{ID: 7, OrderID: "o-1", Kind: notify.OrderFailed, Subject: "Your order could not be completed",
		Status: "FAILED", Reason: `<script>alert("x")</script>`, TotalCents: 1999, Currency: "EUR"}
	text, html, err := notify.Render(m)
	require.NoError(t, err)
	assert.Contains(t, text, `could not be completed (<script>alert("x")</script>).`)
	assert.Contains(t, text, "Total: 19.99 EUR")
	assert.Contains(t, html, "<h1>Your order could not be completed</h1>")
	assert.Contains(t, html, "&lt;script&gt;")
	assert.NotContains(t, html, "<script>")

	m.Kind, m.Body = "gift_card_issued", "Order o-1: CONFIRMED (1999 EUR)."
	text, html, err = notify.Render(m)
	require.NoError(t, err)
	assert.Contains(t, text, "Order o-1: CONFIRMED (1999 EUR).", "a kind without templates gets the default")
	assert.Contains(t, html, "<h1>About your order</h1>")
}
