package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/lab"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/workflows/order"
)

// observability is deploy/observability, relative to this package.
const observability = "../deploy/observability"

// prometheusOwn are series Prometheus makes itself when it scrapes, which no
// process exports, and the backup job's, which it writes to a textfile
// (devtools/backup checks its name against the alert rules).
var prometheusOwn = map[string]bool{"up": true, "orderflow_backup_last_success_timestamp_seconds": true}

// TestDashboardAndAlertRulesQueryOnlyMetricsTheGatewayAndWorkerExport runs
// `orderflow api` and `orderflow worker` as the deployment does, places real
// orders through the API (two confirmed, one declined, one idempotent replay),
// queries each finished saga (which replays its history), then requires every metric the Grafana dashboard and the alert rules query
// to be a family in the /metrics output of one of the two processes, and the
// business series to count what happened.
func TestDashboardAndAlertRulesQueryOnlyMetricsTheGatewayAndWorkerExport(t *testing.T) {
	pool := testkit.DB(t)
	temporalAddr := testkit.Require(t, testkit.EnvTemporal)
	provider := testkit.StartPaysim(t, "paysim-obs")
	region := "obs-" + uuid.NewString()[:8]
	gateway := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	workerAddr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	env := append(testkit.RedisEnv(t),
		"DATABASE_URL="+testkit.Require(t, testkit.EnvDatabase),
		"TEMPORAL_ADDRESS="+temporalAddr, "ORDERFLOW_REGION="+region, "LOG_LEVEL=warn",
		"PAYMENT_PROVIDERS=paysim-obs=paysim:"+provider.URL,
		"API_ADDR="+gateway, "WORKER_HEALTH_ADDR="+workerAddr,
	)
	authCfg := testkit.AuthConfig()
	env = append(env, "AUTH_HS256_SECRET="+authCfg.HS256Secret)
	startProcess(t, env, "http://"+workerAddr+"/health/live", "worker")
	startProcess(t, env, "http://"+gateway+"/health/live", "api")
	s := &stack{t: t, pool: pool, url: "http://" + gateway, tok: testkit.AuthWith(t, authCfg)}

	// Before any order, the counters whose first increase rate() must see
	// are there at zero.
	before := families(scrape(t, "http://"+gateway+"/metrics"))
	for _, name := range []string{"orderflow_orders_placed_total", "orderflow_orders_idempotent_replays_total",
		"orderflow_gateway_ratelimit_rejected_total", "orderflow_db_pool_connections"} {
		assert.True(t, before[name], "the gateway exports %s from the start", name)
	}
	wk0 := scrape(t, "http://"+workerAddr+"/metrics")
	for _, name := range []string{"orderflow_payment_attempts_total", "orderflow_payment_breaker_state", "orderflow_db_pool_connections",
		"temporal_worker_task_slots_available"} {
		assert.True(t, families(wk0)[name], "the worker exports %s from the start", name)
	}
	assert.Contains(t, wk0, `orderflow_payment_attempts_total{otel_scope_name="github.com/orderflow/orderflow/activities/payment",otel_scope_schema_url="",otel_scope_version="",provider="paysim-obs",result="ambiguous"} 0`)

	sku := testkit.Product(t, pool, 700, 10)
	newOrder := func(token string) orderReq {
		return newOrder(customer(), token, api.OrderItem{SKU: sku, Quantity: 1})
	}
	first := newOrder(payment.TokenVisa)
	key := uuid.NewString()
	r := s.place(key, first)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	var acc api.Accepted
	r.json(t, &acc)
	ids := []string{acc.OrderID, s.placeOK(newOrder(payment.TokenMastercard)), s.placeOK(newOrder(payment.TokenChargeDeclined))}
	replay := s.place(key, first)
	require.Equal(t, "true", replay.header.Get(api.HeaderReplayed), "the same key and body replay the first answer")
	tc := testkit.Temporal(t)
	for _, id := range ids {
		s.waitTerminal(id)
		// A query of a closed saga replays its whole history on a worker;
		// the saga's metrics must not count the order again.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := tc.QueryWorkflow(ctx, order.WorkflowID(id), "", order.StatusQuery)
		cancel()
		require.NoError(t, err)
	}
	s.do(http.MethodGet, "/v1/products", nil, nil)
	s.do(http.MethodGet, "/v1/products", nil, nil)

	wanted := dashboardAndAlertMetrics(t)
	require.NotEmpty(t, wanted)
	// The saga records its end in the workflow task that writes the
	// terminal status, so the worker's series may trail the API's answer.
	var gw, wk string
	var missing []string
	for deadline := time.Now().Add(30 * time.Second); ; {
		gw, wk = scrape(t, "http://"+gateway+"/metrics"), scrape(t, "http://"+workerAddr+"/metrics")
		exported := families(gw)
		for name := range families(wk) {
			exported[name] = true
		}
		missing = missing[:0]
		for _, name := range wanted {
			if !exported[name] && !prometheusOwn[name] {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.Empty(t, missing, "queried by the dashboard or the alert rules but exported by neither process")

	assert.Equal(t, 3.0, sum(gw, "orderflow_orders_placed_total", nil), "three orders accepted")
	assert.Equal(t, 1.0, sum(gw, "orderflow_orders_idempotent_replays_total", nil), "one replay")
	assert.Equal(t, 4.0, sum(gw, "orderflow_http_server_duration_seconds_count", map[string]string{
		"method": "POST", "route": "/v1/orders", "status_class": "2xx"}), "four POST /v1/orders answered 202")
	queue := map[string]string{"task_queue": "orders-" + region}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range queue {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	assert.Equal(t, 2.0, sum(wk, "orderflow_orders_completed_total", with("status", "CONFIRMED", "reason", "none")))
	assert.Equal(t, 1.0, sum(wk, "orderflow_orders_completed_total", with("status", "FAILED", "reason", "payment_declined")))
	assert.Equal(t, 3.0, sum(wk, "orderflow_saga_duration_seconds_count", queue), "one saga duration per order")
	assert.Equal(t, 1.0, sum(wk, "orderflow_saga_compensations_total", with("step", "release_inventory", "result", "ok")))
	assert.Equal(t, 1.0, sum(wk, "orderflow_saga_compensations_total", with("step", "refund_payment", "result", "ok")))
	assert.Equal(t, 2.0, sum(wk, "orderflow_payment_attempts_total", map[string]string{"provider": "paysim-obs", "result": "charged"}))
	assert.Equal(t, 1.0, sum(wk, "orderflow_payment_attempts_total", map[string]string{"provider": "paysim-obs", "result": "declined"}))
	assert.Equal(t, 0.0, sum(wk, "orderflow_payment_breaker_state", map[string]string{"provider": "paysim-obs"}), "breaker closed")
	assert.Positive(t, sum(wk, "temporal_workflow_task_schedule_to_start_latency_seconds_count", queue))
	assert.Positive(t, sum(wk, "temporal_workflow_task_replay_latency_seconds_count", queue), "the queries replayed histories")
	assert.Positive(t, sum(gw, "orderflow_db_pool_connections", map[string]string{"state": "max"}))
}

// startProcess runs `orderflow <cmd>` with env until the test ends and waits
// until health answers 200.
func startProcess(t *testing.T, env []string, health string, cmd ...string) {
	t.Helper()
	startProcessTo(t, os.Stderr, env, health, cmd...)
}

// startProcessTo is startProcess with the process's output written to out.
func startProcessTo(t *testing.T, out io.Writer, env []string, health string, cmd ...string) {
	t.Helper()
	r := testkit.StartProcess(t, lab.Process{Command: append([]string{testkit.Binary(t)}, cmd...), Env: env, Output: out,
		DieWithParent: true}, health, 30*time.Second, fmt.Sprintf("orderflow %s", cmd))
	t.Cleanup(func() { testkit.Stop(r, 10*time.Second) })
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	return string(b)
}

// families returns the names a Prometheus text exposition lets a query use:
// every family in a # TYPE line, with _bucket, _sum and _count for
// histograms and _sum and _count for summaries.
func families(exposition string) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		out[f[2]] = true
		switch f[3] {
		case "histogram":
			out[f[2]+"_bucket"], out[f[2]+"_sum"], out[f[2]+"_count"] = true, true, true
		case "summary":
			out[f[2]+"_sum"], out[f[2]+"_count"] = true, true
		}
	}
	return out
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// sum adds up the samples of metric whose labels include every one in match.
func sum(exposition, metric string, match map[string]string) float64 {
	var total float64
	for _, line := range strings.Split(exposition, "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil || m[1] != metric {
			continue
		}
		labels := map[string]string{}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			labels[p[1]] = p[2]
		}
		ok := true
		for k, v := range match {
			ok = ok && labels[k] == v
		}
		if v, err := strconv.ParseFloat(m[3], 64); ok && err == nil {
			total += v
		}
	}
	return total
}

// dashboardAndAlertMetrics returns every metric name the Grafana dashboard's
// queries and the alert rules' expressions use, sorted.
func dashboardAndAlertMetrics(t *testing.T) []string {
	t.Helper()
	var exprs []string
	b, err := os.ReadFile(filepath.Join(observability, "grafana", "orderflow.json"))
	require.NoError(t, err)
	var dash any
	require.NoError(t, json.Unmarshal(b, &dash))
	collectExprs(dash, &exprs)
	require.NotEmpty(t, exprs, "the dashboard has queries")

	b, err = os.ReadFile(filepath.Join(observability, "alerts.yml"))
	require.NoError(t, err)
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	require.NoError(t, yaml.Unmarshal(b, &rules))
	n := len(exprs)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			require.Empty(t, r.Record, "recording rules would need their names excluded here")
			exprs = append(exprs, r.Expr)
		}
	}
	require.Greater(t, len(exprs), n, "the alert rules have expressions")

	seen := map[string]bool{}
	for _, e := range exprs {
		names := promqlMetrics(e)
		require.NotEmpty(t, names, "query names no metric: %s", e)
		for _, name := range names {
			seen[name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// collectExprs appends the value of every "expr" key in a decoded JSON
// document: the dashboard's panel targets, rows' panels included.
func collectExprs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "expr" {
				*out = append(*out, s)
				continue
			}
			collectExprs(x, out)
		}
	case []any:
		for _, x := range v {
			collectExprs(x, out)
		}
	}
}

var (
	promqlString   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promqlMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promqlRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true,
	}
)

// promqlMetrics returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and grouping
// clauses are gone, less function and aggregation names (followed by a
// parenthesis), keywords, and numbers' and durations' letters.
func promqlMetrics(expr string) []string {
	s := promqlString.ReplaceAllString(expr, `""`)
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlRange.ReplaceAllString(s, " ")
	s = promqlGrouping.ReplaceAllString(s, " ")
	ident := func(c byte, first bool) bool {
		return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') || (!first && c >= '0' && c <= '9')
	}
	var out []string
	for i := 0; i < len(s); {
		c := s[i]
		if !ident(c, true) {
			i++
			continue
		}
		j := i
		for j < len(s) && ident(s[j], false) {
			j++
		}
		word := s[i:j]
		// A letter glued to a number (1e3, 5m) or to $ (a Grafana variable)
		// is no metric.
		glued := i > 0 && (s[i-1] == '.' || s[i-1] == '$' || (s[i-1] >= '0' && s[i-1] <= '9'))
		k := j
		for k < len(s) && (s[k] == ' ' || s[k] == '\n' || s[k] == '\t') {
			k++
		}
		call := k < len(s) && s[k] == '('
		if !glued && !call && !promqlKeywords[strings.ToLower(word)] && !slices.Contains(out, word) {
			out = append(out, word)
		}
		i = j
	}
	return out
}

func TestPromqlMetricsFindsEveryMetricAndNothingElse(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up == 0`, []string{"up"}},
		{`sum(rate(a_total{route!~"/health.*|x{y}",b="c"}[5m]))`, []string{"a_total"}},
		{`histogram_quantile(0.99, sum by (route, le) (rate(h_bucket[$__rate_interval]))) > 2`, []string{"h_bucket"}},
		{"sum(rate(a[1h])) / ignoring(x) group_left(y) b offset 5m > 1e3", []string{"a", "b"}},
		{"sum without (job) (c) and on(le) d unless bool e", []string{"c", "d", "e"}},
		{"sum(rate(a[5m])) by (tier)\n / (x + y)", []string{"a", "x", "y"}},
		{`label_replace(a, "dst", "$1", "src", "(.*)")`, []string{"a"}},
		{`vector(1)`, nil},
	} {
		assert.Equal(t, tc.want, promqlMetrics(tc.expr), tc.expr)
	}
}

func TestFamiliesListHistogramSeriesNames(t *testing.T) {
	got := families("# HELP a_seconds x\n# TYPE a_seconds histogram\na_seconds_bucket{le=\"1\"} 1\n# TYPE b_total counter\nb_total 2\n")
	assert.Equal(t, map[string]bool{"a_seconds": true, "a_seconds_bucket": true, "a_seconds_sum": true, "a_seconds_count": true, "b_total": true}, got)
	assert.Equal(t, 2.0, sum("b_total{x=\"1\"} 2\nb_totalx 5\n", "b_total", map[string]string{"x": "1"}))
}
