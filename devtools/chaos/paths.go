package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Path is one recovery path and how often the run saw it taken.
type Path struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	// Required paths must have run: a run that never reaches one did not
	// test it, and fails.
	Required bool   `json:"required"`
	Note     string `json:"note,omitempty"`
}

// scraper reads the gateway's and the worker's /metrics every second and
// adds up each breaker's transitions to open. A restarted process starts
// its counters again from zero: a counter lower than the last reading is
// counted from zero.
type scraper struct {
	urls []string
	mu   sync.Mutex
	last map[string]float64 // url + series -> last value
	// opened counts transitions to open per dependency ("temporal",
	// "redis", "payment:paysim-a", ...); seen holds every dependency that
	// has a breaker, open or not.
	opened map[string]int
	seen   map[string]bool
	// The gateway's order task queue backlog age (admission refuses
	// placements over 10 s): samples, the largest, and those over 10 s.
	backlogSamples, backlogOver int
	backlogMax                  float64
	// deferred is each gateway's orderflow_orders_start_deferred_total, by
	// url, as last read.
	deferred map[string]float64
}

// deferredStarts sums the gateways' deferred saga starts as last read.
func (s *scraper) deferredStarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0.0
	for _, v := range s.deferred {
		n += v
	}
	return int(n)
}

// backlog sums up the backlog age samples.
func (s *scraper) backlog() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%d samples, max %.1f s, %d over 10 s", s.backlogSamples, s.backlogMax, s.backlogOver)
}

func newScraper(urls []string) *scraper {
	return &scraper{urls: urls, last: map[string]float64{}, opened: map[string]int{}, seen: map[string]bool{},
		deferred: map[string]float64{}}
}

func (r *Runner) metricsURLs() []string {
	urls := []string{strings.TrimSuffix(r.cfg.APIURL, "/") + "/metrics"}
	if r.cfg.WorkerURL != "" {
		urls = append(urls, strings.TrimSuffix(r.cfg.WorkerURL, "/")+"/metrics")
	}
	return urls
}

func (s *scraper) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.scrape()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scrape reads every URL once; one that does not answer (its process is
// down) is skipped.
func (s *scraper) scrape() {
	for _, u := range s.urls {
		res, err := httpClient.Get(u)
		if err != nil {
			continue
		}
		body, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			continue
		}
		s.read(u, body)
	}
}

// read takes the breaker series out of one exposition.
func (s *scraper) read(url string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, labels, value, ok := parseSample(sc.Text())
		if !ok {
			continue
		}
		if name == "orderflow_orders_start_deferred_total" {
			s.deferred[url] = value
			continue
		}
		if name == "orderflow_temporal_task_queue_backlog_age_seconds" {
			s.backlogSamples++
			s.backlogMax = max(s.backlogMax, value)
			if value > 10 {
				s.backlogOver++
			}
			continue
		}
		var dep string
		switch name {
		case "orderflow_breaker_transitions_total", "orderflow_breaker_state":
			dep = labels["dependency"]
		case "orderflow_payment_breaker_transitions_total", "orderflow_payment_breaker_state":
			dep = "payment:" + labels["provider"]
		default:
			continue
		}
		s.seen[dep] = true
		if !strings.HasSuffix(name, "_total") || labels["state"] != "open" {
			continue
		}
		key := url + " " + dep
		prev, had := s.last[key]
		s.last[key] = value
		switch {
		case !had:
			s.opened[dep] += int(value)
		case value >= prev:
			s.opened[dep] += int(value - prev)
		default: // the process restarted
			s.opened[dep] += int(value)
		}
	}
}

// parseSample reads one line of the Prometheus text format.
func parseSample(line string) (string, map[string]string, float64, bool) {
	if line == "" || line[0] == '#' {
		return "", nil, 0, false
	}
	labels := map[string]string{}
	name, rest := line, ""
	if i := strings.IndexByte(line, '{'); i >= 0 {
		j := strings.LastIndexByte(line, '}')
		if j < i {
			return "", nil, 0, false
		}
		name, rest = line[:i], strings.TrimSpace(line[j+1:])
		for _, kv := range splitLabels(line[i+1 : j]) {
			k, v, ok := strings.Cut(kv, "=")
			if ok {
				if uq, err := strconv.Unquote(v); err == nil {
					v = uq
				}
				labels[strings.TrimSpace(k)] = v
			}
		}
	} else if f := strings.Fields(line); len(f) >= 2 {
		name, rest = f[0], f[1]
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return "", nil, 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return name, labels, v, err == nil
}

// splitLabels splits a="x",b="y" at the commas outside quotes.
func splitLabels(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func (s *scraper) openings() (map[string]int, map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	opened, seen := map[string]int{}, map[string]bool{}
	for k, v := range s.opened {
		opened[k] = v
	}
	for k := range s.seen {
		seen[k] = true
	}
	return opened, seen
}

// refusal is a 503 the gateway answered an order placement with.
type refusal struct {
	At         time.Time
	Latency    time.Duration
	Code       string
	Breaker    bool // refused by the open Temporal breaker, before any work
	RetryAfter string
}

// recorder is the load's transport: it notes every 503 the gateway
// answers a placement with, its latency and its Retry-After.
type recorder struct {
	next http.RoundTripper
	r    *Runner
}

func (t recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := t.next.RoundTrip(req)
	if err != nil || res.StatusCode != http.StatusServiceUnavailable || req.Method != http.MethodPost || req.URL.Path != "/v1/orders" {
		return res, err
	}
	body, rerr := io.ReadAll(res.Body)
	_ = res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return res, nil
	}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	ref := refusal{At: start, Latency: time.Since(start), Code: e.Error.Code, RetryAfter: res.Header.Get("Retry-After"),
		// The breaker's refusal says to wait the Retry-After seconds
		// (api.admit); a start that failed says the order could not be
		// started.
		Breaker: e.Error.Code == "temporal_unavailable" && strings.Contains(e.Error.Message, "Retry-After")}
	if t.r != nil {
		t.r.mu.Lock()
		t.r.refusals = append(t.r.refusals, ref)
		t.r.mu.Unlock()
	}
	return res, nil
}

// BreakerCase is issue 21's breaker chaos case: with the Temporal frontend
// down (temporal_outage) the gateway's breaker opens; placements are then
// accepted with their saga's start deferred (api, ORDER_START_DEFER_MAX)
// or, where deferral is off or past its bound, refused at once with 503
// temporal_unavailable and Retry-After. It asserts the behaviour (the
// breaker opened; placements were deferred or refused; every refusal
// carried Retry-After) and reports the timing: how long after the frontend
// went down the first fast refusal came, and the refusals' latency.
type BreakerCase struct {
	Outages       int     `json:"outages"`
	Opened        int     `json:"breaker_openings"`
	Refusals      int     `json:"fast_refusals"`
	Deferred      int     `json:"deferred_starts"`
	NoRetryAfter  int     `json:"refusals_without_retry_after"`
	FirstAfterSec float64 `json:"first_refusal_after_s"`
	P50Ms         float64 `json:"refusal_p50_ms"`
	P99Ms         float64 `json:"refusal_p99_ms"`
	MaxMs         float64 `json:"refusal_max_ms"`
	Passed        bool    `json:"passed"`
}

// breakerCase sums up the refusals during the temporal_outage windows
// (and the 10 s after each, while the breaker stays open).
func (r *Runner) breakerCase() *BreakerCase {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &BreakerCase{FirstAfterSec: -1}
	var lat []time.Duration
	for _, w := range r.windows {
		if w.Kind != "temporal_outage" {
			continue
		}
		c.Outages++
		first := time.Duration(-1)
		for _, ref := range r.refusals {
			if !ref.Breaker || ref.At.Before(w.Start) || ref.At.After(w.End.Add(10*time.Second)) {
				continue
			}
			c.Refusals++
			lat = append(lat, ref.Latency)
			if _, err := strconv.Atoi(ref.RetryAfter); err != nil {
				c.NoRetryAfter++
			}
			if first < 0 || ref.At.Sub(w.Start) < first {
				first = ref.At.Sub(w.Start)
			}
		}
		if first >= 0 && (c.FirstAfterSec < 0 || first.Seconds() > c.FirstAfterSec) {
			c.FirstAfterSec = first.Seconds() // the slowest outage's
		}
	}
	if c.Outages == 0 {
		return nil
	}
	if r.metrics != nil {
		opened, _ := r.metrics.openings()
		c.Opened = opened["temporal"]
		c.Deferred = r.metrics.deferredStarts()
	}
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		c.P50Ms, c.P99Ms, c.MaxMs = ms(lat[n/2]), ms(lat[min(n-1, n*99/100)]), ms(lat[n-1])
	}
	c.Passed = c.Opened > 0 && (c.Refusals > 0 || c.Deferred > 0) && c.NoRetryAfter == 0
	return c
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// faultDependency is the breaker a fault kind must open, if any.
var faultDependency = map[string]string{
	"temporal_outage": "temporal",
	"redis_restart":   "redis",
	"smtp_restart":    "smtp",
	// Not nats_restart: the event relay makes no call while its connection
	// is down (it waits, backing off), so NATS's breaker sees only
	// publishes that fail on a live connection, which a restart does not
	// cause.
}

// paths counts how often each recovery path ran, from the final state (the
// payments, the ledgers, the status history, the returns and shipments),
// the breakers' metrics and the event consumer.
func (r *Runner) paths(ctx context.Context) ([]Path, error) {
	ids := r.acceptedIDs()
	kinds := map[string]bool{}
	r.mu.Lock()
	var primaryOutages []*window
	for _, w := range r.windows {
		kinds[w.Kind] = true
		if w.Kind == "provider_primary_outage" && w.Err == "" {
			primaryOutages = append(primaryOutages, w)
		}
	}
	r.mu.Unlock()
	var out []Path
	count := func(row pgx.Row) (int, error) {
		var n int
		err := row.Scan(&n)
		return n, err
	}
	primary := r.primary()

	n, err := count(r.db.QueryRow(ctx, `SELECT count(*) FROM payments WHERE order_id = ANY($1::uuid[]) AND provider <> $2`, ids, primary))
	if err != nil {
		return nil, fmt.Errorf("count failovers: %w", err)
	}
	out = append(out, Path{Name: "provider failover (charged on a secondary provider)", Count: n, Required: kinds["provider_primary_outage"]})
	back := 0
	if len(primaryOutages) > 0 {
		back, err = count(r.db.QueryRow(ctx, `SELECT count(*) FROM payments WHERE order_id = ANY($1::uuid[]) AND provider = $2 AND created_at > $3`,
			ids, primary, primaryOutages[0].End))
		if err != nil {
			return nil, fmt.Errorf("count failbacks: %w", err)
		}
	}
	out = append(out, Path{Name: "back on the primary after its outage", Count: back, Required: len(primaryOutages) > 0})

	// A compensation refunds a charge ("refund-<order>"), or voids an
	// authorization ("void-<order>") and refunds what it had captured
	// ("refund-auth-<order>"): authorize, then capture.
	n, err = count(r.db.QueryRow(ctx, `SELECT count(DISTINCT o.order_id) FROM orders o JOIN paysim.ledger l
		ON substring(l.idempotency_key from '^(?:refund-(?:auth-)?|void-)([0-9a-f-]{36})') = o.order_id::text
		WHERE o.order_id = ANY($1::uuid[]) AND o.status IN ('FAILED', 'CANCELLED')`, ids))
	if err != nil {
		return nil, fmt.Errorf("count refunds: %w", err)
	}
	// The hooks make sure of them; without, a short run may have none.
	out = append(out, Path{Name: "compensating refunds or voids (failed or cancelled after the payment)", Count: n, Required: r.cfg.HookShare > 0})
	n, err = count(r.db.QueryRow(ctx, `SELECT count(DISTINCT o.order_id) FROM orders o JOIN paysim.ledger l
		ON substring(l.idempotency_key from '^(?:refund-(?:auth-)?|void-)([0-9a-f-]{36})') = o.order_id::text
		WHERE o.order_id = ANY($1::uuid[]) AND o.status = 'FAILED' AND o.customer_id LIKE $2`, ids, hookPrefix+"%"))
	if err != nil {
		return nil, fmt.Errorf("count hook refunds: %w", err)
	}
	out = append(out, Path{Name: "compensating refunds or voids after a step past the payment failed (hooks)", Count: n, Required: r.cfg.HookShare > 0})

	n, err = count(r.db.QueryRow(ctx, `SELECT count(DISTINCT h.order_id) FROM order_status_history h JOIN payments p USING (order_id)
		WHERE h.order_id = ANY($1::uuid[]) AND h.status = 'PAYMENT_PENDING'`, ids))
	if err != nil {
		return nil, fmt.Errorf("count parked payments: %w", err)
	}
	out = append(out, Path{Name: "payments parked and resumed (PAYMENT_PENDING, then charged)", Count: n, Required: kinds["provider_outage"]})

	if r.cfg.ReturnShare > 0 {
		n, err = count(r.db.QueryRow(ctx, `SELECT count(*) FROM returns WHERE order_id = ANY($1::uuid[]) AND status = 'refunded'`, ids))
		if err != nil {
			return nil, fmt.Errorf("count returns: %w", err)
		}
		out = append(out, Path{Name: "returns received and refunded in part", Count: n, Required: true})
	}
	if r.cfg.LostRate > 0 {
		n, err = count(r.db.QueryRow(ctx, `SELECT count(*) FROM shipments WHERE order_id = ANY($1::uuid[]) AND status = 'lost'`, ids))
		if err != nil {
			return nil, fmt.Errorf("count lost parcels: %w", err)
		}
		out = append(out, Path{Name: "parcels lost by the carrier (refunded)", Count: n, Required: true})
	}

	opened, seen := r.metrics.openings()
	deps := map[string]bool{"payment:" + primary: true}
	for k := range seen {
		deps[k] = true
	}
	for k := range opened {
		deps[k] = true
	}
	names := make([]string, 0, len(deps))
	for k := range deps {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, dep := range names {
		p := Path{Name: "breaker opened: " + dep, Count: opened[dep]}
		for kind, d := range faultDependency {
			// A fault on a dependency with a breaker must open it.
			if d == dep && kinds[kind] && seen[dep] {
				p.Required = true
			}
		}
		if dep == "payment:"+primary {
			p.Required = kinds["provider_primary_outage"] || kinds["provider_outage"]
		}
		if !seen[dep] {
			p.Note = "no such breaker in the metrics"
		}
		out = append(out, p)
	}
	for kind, dep := range faultDependency {
		if kinds[kind] && !deps[dep] {
			out = append(out, Path{Name: "breaker opened: " + dep, Note: kind + " ran; the stack has no " + dep + " breaker"})
		}
	}
	if r.events != nil {
		st := r.events.stats()
		out = append(out, Path{Name: "event redeliveries (same id, same stream sequence)", Count: st.Redelivered, Required: true,
			Note: fmt.Sprintf("%d left unacknowledged on purpose", st.Unacked)})
	}
	return out, nil
}

// refusalCodes counts the gateway's 503s to placements by error code.
func (r *Runner) refusalCodes() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := map[string]int{}
	for _, ref := range r.refusals {
		n[ref.Code]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
	}
	return strings.Join(parts, ", ")
}
