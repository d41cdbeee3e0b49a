package bench

import (
	"context"
	"sort"
	"sync"
	"time"
)

// sample is one request of a run.
type sample struct {
	sent     time.Time
	accepted time.Time // zero unless the request was accepted
	done     time.Time // terminal status, from the server side; zero until known
	id       string
	errKind  string
	declined bool
}

// openLoop fires fn at a fixed rate for dur, whether or not earlier calls
// have returned (arrivals do not wait for the system, as real customers do
// not). At most maxInFlight calls run at once; an arrival beyond that is
// recorded as a client_overload error rather than delayed, so an overloaded
// system shows up as errors, not as a quietly lower rate.
func openLoop(ctx context.Context, rate float64, dur time.Duration, maxInFlight int, fn func(s *sample)) []*sample {
	interval := time.Duration(float64(time.Second) / rate)
	n := int(dur / interval)
	out := make([]*sample, 0, n)
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				return out
			case <-time.After(d):
			}
		}
		s := &sample{sent: time.Now()}
		out = append(out, s)
		select {
		case sem <- struct{}{}:
		default:
			s.errKind = "client_overload"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(s)
		}()
	}
	wg.Wait()
	return out
}

// percentiles of a set of durations, in milliseconds.
type percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	N   int     `json:"n"`
}

func pct(ds []time.Duration) percentiles {
	if len(ds) == 0 {
		return percentiles{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.5) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(ds) {
			i = len(ds) - 1
		}
		return ms(ds[i])
	}
	return percentiles{P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ms(ds[len(ds)-1]), N: len(ds)}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
