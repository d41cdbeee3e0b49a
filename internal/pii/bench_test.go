package pii_test

import (
	"testing"

	"go.temporal.io/sdk/converter"

	"github.com/orderflow/orderflow/internal/pii"
)

// The order path seals one e-mail per order and the outbox opens one per
// message: these price both.
func BenchmarkSealEmail(b *testing.B) {
	k, err := pii.Load(pii.Config{Keys: "k1:" + pii.NewKey()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = k.SealString("customer.name@example.com", "0b6f2c4e-8f1a-4c1e-9d7a-2f4b6c8d0e1f")
	}
}

func BenchmarkOpenEmail(b *testing.B) {
	k, err := pii.Load(pii.Config{Keys: "k1:" + pii.NewKey()})
	if err != nil {
		b.Fatal(err)
	}
	c := k.SealString("customer.name@example.com", "0b6f2c4e-8f1a-4c1e-9d7a-2f4b6c8d0e1f")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.OpenString(c, "0b6f2c4e-8f1a-4c1e-9d7a-2f4b6c8d0e1f"); err != nil {
			b.Fatal(err)
		}
	}
}

// A saga's input as the gateway starts it (about 400 bytes of JSON), through
// the sealing converter and through the plain one: the difference is what
// the codec adds to each payload of an order, once each way.
func BenchmarkCodecRoundTripOrderInput(b *testing.B) {
	k, err := pii.Load(pii.Config{Keys: "k1:" + pii.NewKey()})
	if err != nil {
		b.Fatal(err)
	}
	in := map[string]any{
		"order_id": "0b6f2c4e-8f1a-4c1e-9d7a-2f4b6c8d0e1f", "customer_id": "c-1234567890", "email": "customer.name@example.com",
		"region": "local", "payment_token": "tok_visa", "payment_deadline": 1800000000000, "payment_retry_initial": 10000000000,
		"items": []map[string]any{{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-2", "quantity": 1}},
	}
	for _, bc := range []struct {
		name string
		dc   converter.DataConverter
	}{{"sealed", pii.DataConverter(k)}, {"plain", converter.GetDefaultDataConverter()}} {
		b.Run(bc.name, func(b *testing.B) {
			var out map[string]any
			b.ReportAllocs()
			for b.Loop() {
				p, err := bc.dc.ToPayload(in)
				if err != nil {
					b.Fatal(err)
				}
				if err := bc.dc.FromPayload(p, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
