package pii_test

import (
	"testing"

	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/pii"
)

// The order path seals one e-mail per order and the outbox opens one per
// message: these price both.
func BenchmarkSealEmail(b *testing.B) {
	k, err := pii.Load(config.PII{Keys: "k1:" + pii.NewKey()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = k.SealString("customer.name@example.com", "0b6f2c4e-8f1a-4c1e-9d7a-2f4b6c8d0e1f")
	}
}

func BenchmarkOpenEmail(b *testing.B) {
	k, err := pii.Load(config.PII{Keys: "k1:" + pii.NewKey()})
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
