package api

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSagaSummary_NamesTheOrderItsUnitsAndTotal(t *testing.T) {
	cases := []struct {
		name  string
		items []OrderItem
		cents int64
		want  string
	}{
		{"one unit", []OrderItem{{SKU: "A", Quantity: 1}}, 5, "Order o-1 — 1 item, EUR 0.05"},
		{"units over lines", []OrderItem{{SKU: "A", Quantity: 2}, {SKU: "B", Quantity: 3}}, 123456, "Order o-1 — 5 items, EUR 1234.56"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := &PlaceOrderRequest{CustomerID: "c-1", Items: c.items, PaymentToken: "tok_visa", Email: "ada@example.com"}
			assert.Equal(t, c.want, sagaSummary("o-1", req, c.cents, "EUR"))
		})
	}
}

func TestSagaDetails_ShowCustomerRegionAndFiveLinesButNoSecrets(t *testing.T) {
	s := &Server{Config: Config{Region: "eu"}}
	var items []OrderItem
	for _, sku := range []string{"A", "B", "C", "D", "E", "F", "G"} {
		items = append(items, OrderItem{SKU: sku, Quantity: 1})
	}
	req := &PlaceOrderRequest{CustomerID: "c-1", Items: items, PaymentToken: "tok_visa", Email: "ada@example.com"}
	got := s.sagaDetails(req, 700, "USD")
	assert.Equal(t, "**Customer:** `c-1` · **Region:** `eu` · **Total:** USD 7.00  \n"+
		"**Lines:** `A` × 1, `B` × 1, `C` × 1, `D` × 1, `E` × 1 and 2 more", got)
	assert.False(t, strings.Contains(got, "tok_visa") || strings.Contains(got, "ada@"), "no payment token or email in what the UI shows")
}
