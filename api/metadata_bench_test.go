package api

import "testing"

// BenchmarkSagaMetadata is what building the summary and details costs the
// gateway per placed order (go test -run '^$' -bench SagaMetadata ./api/):
// about 1.6 µs, against milliseconds of CPU per order on the order path
// (docs/performance.md).
func BenchmarkSagaMetadata(b *testing.B) {
	s := &Server{Config: Config{Region: "eu"}}
	req := &PlaceOrderRequest{CustomerID: "c-1", Items: []OrderItem{{SKU: "SKU-1", Quantity: 2}, {SKU: "SKU-2", Quantity: 1}}}
	b.ReportAllocs()
	for b.Loop() {
		_ = sagaSummary("0b6f3c1e-5a40-4f7e-9d55-3c8e2f1a9b77", req, 4980, "USD")
		_ = s.sagaDetails(req, 4980, "USD")
	}
}
