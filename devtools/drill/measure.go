package drill

import (
	"bufio"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orderflow/orderflow/activities/monitor"
)

// RegionHeader names a customer's home region on every request; the global
// entry point routes on it (docs/regions.md).
const RegionHeader = "X-Orderflow-Region"

// attempt is one placement (POST /v1/orders) and its answer.
type attempt struct {
	Start, End time.Time
	Status     int // 0: no answer
}

// accepted: the gateway took the order (2xx).
func (a attempt) accepted() bool { return a.Status/100 == 2 }

// failed: no answer or a 5xx (a 429 is the limiter's, never the loss's).
func (a attempt) failed() bool { return a.Status == 0 || a.Status >= 500 }

// customers is the load's transport for the customers of one home region:
// it names the region on each request and records every placement.
type customers struct {
	region string
	next   http.RoundTripper

	mu       sync.Mutex
	attempts []attempt
}

// RoundTrip implements http.RoundTripper.
func (c *customers) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set(RegionHeader, c.region)
	if req.Method != http.MethodPost || req.URL.Path != "/v1/orders" {
		return c.next.RoundTrip(req)
	}
	a := attempt{Start: time.Now()}
	res, err := c.next.RoundTrip(req)
	a.End = time.Now()
	if err == nil {
		a.Status = res.StatusCode
	}
	c.mu.Lock()
	c.attempts = append(c.attempts, a)
	c.mu.Unlock()
	return res, err
}

func (c *customers) snapshot() []attempt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]attempt(nil), c.attempts...)
}

// firstAccepted is the end of the earliest accepted placement sent at or
// after since: the moment a customer got an order accepted again after a
// loss. A placement sent before since says nothing of the service after it.
func firstAccepted(attempts []attempt, since time.Time) (time.Time, bool) {
	var first time.Time
	for _, a := range attempts {
		if a.Start.Before(since) || !a.accepted() {
			continue
		}
		if first.IsZero() || a.End.Before(first) {
			first = a.End
		}
	}
	return first, !first.IsZero()
}

// Refusals counts the placements sent in a window by what they got.
type Refusals struct {
	Sent     int `json:"sent"`
	Accepted int `json:"accepted"`
	// Status503 are the clear refusals (with Retry-After); Failed the
	// other 5xx and the placements that got no answer at all.
	Status503 int `json:"status_503"`
	Failed    int `json:"failed_other"`
}

// refusals counts the placements sent in [from, to).
func refusals(attempts []attempt, from, to time.Time) Refusals {
	var r Refusals
	for _, a := range attempts {
		if a.Start.Before(from) || !a.Start.Before(to) {
			continue
		}
		r.Sent++
		switch {
		case a.accepted():
			r.Accepted++
		case a.Status == http.StatusServiceUnavailable:
			r.Status503++
		case a.failed():
			r.Failed++
		}
	}
	return r
}

// Latency is a histogram's mean and count, as a Prometheus endpoint
// exposes it (the _sum and _count series, every label set added up).
type Latency struct {
	Count  float64 `json:"count"`
	MeanMS float64 `json:"mean_ms"`
}

// histogramMean reads metric's _sum and _count from a Prometheus text
// exposition whose unit is seconds (Temporal's tally histograms) and
// returns their mean; ok is false when the metric is absent or never
// observed.
func histogramMean(text, metric string) (Latency, bool) {
	var sum, count float64
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			continue
		}
		name, rest := line[:end], line[end:]
		if rest[0] == '{' {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		switch name {
		case metric + "_sum":
			sum += v
		case metric + "_count":
			count += v
		}
	}
	if count == 0 {
		return Latency{}, false
	}
	return Latency{Count: count, MeanMS: sum / count * 1000}, true
}

// doubleCharged are the orders, of ids, that the providers charged more
// than once and did not refund down to one charge: a customer paying twice.
// A second charge refunded in full (a compensation) is not one. An order
// paid by authorization pays by captures, several by design (one per
// shipment, across renewals): the money invariants (monitor.CheckCharges:
// never more than its total) judge it instead.
func doubleCharged(ledger map[string]*monitor.Money, ids []string) []string {
	var out []string
	for _, id := range ids {
		m := ledger[id]
		if m == nil || m.Charges < 2 || m.Authorizations > 0 {
			continue
		}
		if net, one := m.Charged-m.Refunded, m.Charged/int64(m.Charges); net > one {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Objective is one of the drill's objectives, measured.
type Objective struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Target string `json:"target"`
	Met    bool   `json:"met"`
}

// within is an objective on a duration: met when it was measured and is
// under bound.
func within(name string, d *float64, bound time.Duration) Objective {
	o := Objective{Name: name, Target: "< " + bound.String(), Value: "not reached"}
	if d != nil {
		o.Value = strconv.FormatFloat(*d, 'f', 1, 64) + " s"
		o.Met = *d < bound.Seconds()
	}
	return o
}

// none is an objective on a count that must be zero.
func none(name string, n int) Objective {
	return Objective{Name: name, Target: "0", Value: strconv.Itoa(n), Met: n == 0}
}

// seconds is d in seconds, for the report.
func seconds(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}
