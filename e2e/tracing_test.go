package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/activities/payment/paysim"
	"github.com/orderflow/orderflow/api"
	paysimsrv "github.com/orderflow/orderflow/devtools/paysim"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/logging"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/internal/telemetry"
	"github.com/orderflow/orderflow/workers"
	"github.com/orderflow/orderflow/workflows/order"
)

// observedStack is the gateway, a worker and a paysim provider wired as
// cmd/orderflow wires them with tracing on, their spans recorded in memory
// and every log line (gateway, Temporal SDK, workflows, activities,
// provider) captured as JSON at debug level.
type observedStack struct {
	t        *testing.T
	url      string
	spans    *tracetest.SpanRecorder
	logs     *lockedBuffer
	temporal client.Client
	fixtures *pgxpool.Pool
	tok      testkit.Tokens
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newObservedStack(t *testing.T) *observedStack {
	t.Helper()
	ctx := context.Background()
	s := &observedStack{t: t, fixtures: testkit.DB(t), spans: tracetest.NewSpanRecorder(), logs: &lockedBuffer{}, tok: testkit.Auth(t)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(s.logs), zapcore.DebugLevel),
		zap.AddCaller())

	pool, err := db.Open(ctx, testkit.Require(t, testkit.EnvDatabase), db.WithTracing(tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	rc, err := cache.Connect(testkit.RedisConfig(t))
	if err == nil {
		err = cache.Trace(rc, tp)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	interceptors, propagators, err := telemetry.Temporal(tp, order.IDOf)
	if err != nil {
		t.Fatal(err)
	}
	dc, fc := pii.Converters(testkit.PII(t))
	s.temporal, err = client.Dial(client.Options{HostPort: testkit.Require(t, testkit.EnvTemporal), Namespace: "default",
		Logger: logging.Temporal(log), Interceptors: interceptors, ContextPropagators: propagators,
		DataConverter: dc, FailureConverter: fc})
	if err != nil {
		t.Fatalf("dial temporal: %v", err)
	}
	t.Cleanup(s.temporal.Close)

	if err := paysimsrv.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("paysim schema: %v", err)
	}
	psrv, err := paysimsrv.NewServer(pool, "paysim-obs", paysimsrv.Faults{}, log)
	if err != nil {
		t.Fatal(err)
	}
	phs := httptest.NewServer(telemetry.HTTPHandler(tp, psrv.Handler(), "paysim"))
	t.Cleanup(phs.Close)
	t.Cleanup(psrv.Close)
	provider := paysim.NewTracedClient("paysim-obs", phs.URL, testkit.PaysimTimeout, tp)

	region := "obs-" + uuid.NewString()[:8]
	w := workers.New(s.temporal, workers.Deps{DB: pool, Cache: rc, Log: log, PII: testkit.PII(t), Payments: payment.NewRouter(e2eBreaker, provider)},
		workers.Config{Region: region})
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(w.Stop)
	srv := &api.Server{DB: pool, Cache: rc, Temporal: s.temporal, Log: log, Config: api.Config{Region: region}, TracerProvider: tp, Auth: s.tok.Auth}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

// place posts an order under a request id and waits for its saga to end.
func (s *observedStack) place(requestID, token, sku string) (orderID string, view order.View) {
	s.t.Helper()
	body, _ := json.Marshal(newOrder("c-obs", token, api.OrderItem{SKU: sku, Quantity: 1}))
	req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/orders", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.HeaderIdempotencyKey, uuid.NewString())
	req.Header.Set("X-Request-ID", requestID)
	req.Header.Set("Authorization", s.tok.Minter.Bearer("c-obs", auth.RoleCustomer))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var acc api.Accepted
	if err := json.NewDecoder(res.Body).Decode(&acc); err != nil || res.StatusCode != http.StatusAccepted {
		s.t.Fatalf("place order: %d, %v", res.StatusCode, err)
	}
	if got := res.Header.Get("X-Request-ID"); got != requestID {
		s.t.Errorf("X-Request-ID echoed as %q, want %q", got, requestID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.temporal.GetWorkflow(ctx, order.WorkflowID(acc.OrderID), "").Get(ctx, &view); err != nil {
		s.t.Fatalf("saga of %s: %v", acc.OrderID, err)
	}
	return acc.OrderID, view
}

// trace returns the spans of the trace the span named root (the gateway's
// server span) started, waiting until it holds every span named in want.
func (s *observedStack) trace(root string, want ...string) []sdktrace.ReadOnlySpan {
	s.t.Helper()
	var spans []sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		spans = nil
		var id trace.TraceID
		ended := s.spans.Ended()
		for _, sp := range ended {
			if sp.Name() == root && sp.SpanKind() == trace.SpanKindServer {
				id = sp.SpanContext().TraceID()
			}
		}
		names := map[string]bool{}
		for _, sp := range ended {
			if sp.SpanContext().TraceID() == id {
				spans = append(spans, sp)
				names[sp.Name()] = true
			}
		}
		missing := false
		for _, n := range want {
			missing = missing || !names[n]
		}
		if id.IsValid() && !missing {
			return spans
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the trace of %q never held all of %q; it has %s", root, want, spanTree(spans))
		}
	}
}

// spanTree renders spans as an indented tree: name, kind, and for SQL the
// statement's start.
func spanTree(spans []sdktrace.ReadOnlySpan) string {
	byID := map[trace.SpanID]bool{}
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	for _, sp := range spans {
		byID[sp.SpanContext().SpanID()] = true
	}
	var roots []sdktrace.ReadOnlySpan
	for _, sp := range spans {
		if p := sp.Parent().SpanID(); sp.Parent().IsValid() && byID[p] {
			children[p] = append(children[p], sp)
		} else {
			roots = append(roots, sp)
		}
	}
	var b strings.Builder
	var walk func(sp sdktrace.ReadOnlySpan, depth int)
	walk = func(sp sdktrace.ReadOnlySpan, depth int) {
		fmt.Fprintf(&b, "%s%s [%s]", strings.Repeat("  ", depth), sp.Name(), sp.SpanKind())
		if q := attr(sp, "db.query.text"); q != "" {
			q = strings.Join(strings.Fields(q), " ")
			if len(q) > 60 {
				q = q[:60] + "..."
			}
			fmt.Fprintf(&b, " %q", q)
		}
		b.WriteByte('\n')
		kids := children[sp.SpanContext().SpanID()]
		sort.Slice(kids, func(i, j int) bool { return kids[i].StartTime().Before(kids[j].StartTime()) })
		for _, c := range kids {
			walk(c, depth+1)
		}
	}
	sort.Slice(roots, func(i, j int) bool { return roots[i].StartTime().Before(roots[j].StartTime()) })
	for _, r := range roots {
		walk(r, 0)
	}
	return b.String()
}

func attr(sp sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, a := range sp.Attributes() {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}

// One POST /v1/orders is one trace: the gateway's server span, the saga's
// start and run, each saga step (local activities) with its SQL, and the
// call to the payment provider, each span under the one that caused it.
func TestOnePlacedOrderIsOneTraceFromGatewayThroughSagaStepsToSQLAndProvider(t *testing.T) {
	s := newObservedStack(t)
	sku := testkit.Product(t, s.fixtures, 1500, 10)
	orderID, view := s.place("obs-trace-"+uuid.NewString()[:8], payment.TokenVisa, sku)
	if view.Status != orderflow.StatusConfirmed {
		t.Fatalf("order %s ended %s, want CONFIRMED", orderID, view.Status)
	}
	// The card is authorized, then captured in full as the order is confirmed.
	steps := []string{"Create", "Reserve", "Authorize", "Capture", "Confirm"}
	want := []string{"StartWorkflow:" + order.Workflow, "RunWorkflow:" + order.Workflow}
	for _, st := range steps {
		want = append(want, "StartActivity:"+st, "RunActivity:"+st)
	}
	spans := s.trace("POST /v1/orders", want...)
	tree := spanTree(spans)
	t.Logf("span tree of order %s:\n%s", orderID, tree)
	if err := os.WriteFile(filepath.Join(t.TempDir(), "trace.txt"), []byte(tree), 0o644); err != nil {
		t.Error(err)
	}

	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	named := map[string][]sdktrace.ReadOnlySpan{}
	for _, sp := range spans {
		byID[sp.SpanContext().SpanID()] = sp
		named[sp.Name()] = append(named[sp.Name()], sp)
	}
	one := func(name string) sdktrace.ReadOnlySpan {
		t.Helper()
		if len(named[name]) != 1 {
			t.Fatalf("%d spans named %q, want 1:\n%s", len(named[name]), name, tree)
		}
		return named[name][0]
	}
	parentOf := func(sp sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan { return byID[sp.Parent().SpanID()] }
	isChild := func(child, parent sdktrace.ReadOnlySpan) bool {
		return child.Parent().SpanID() == parent.SpanContext().SpanID()
	}
	// descends: under the step's span itself or a batch it sent, but not
	// under a later step.
	descends := func(sp, ancestor sdktrace.ReadOnlySpan) bool {
		for p := parentOf(sp); p != nil; p = parentOf(p) {
			if p == ancestor {
				return true
			}
			if strings.HasPrefix(p.Name(), "RunActivity:") || p.SpanKind() == trace.SpanKindServer {
				return false
			}
		}
		return false
	}

	// Every span of the trace descends from the one server span with no parent.
	root := one("POST /v1/orders")
	if root.Parent().IsValid() {
		t.Errorf("the gateway's span has a parent %s", root.Parent().SpanID())
	}
	if attr(root, "http.route") != "/v1/orders" {
		t.Errorf("server span route %q, want /v1/orders", attr(root, "http.route"))
	}
	for _, sp := range spans {
		for p := sp; p != root; p = parentOf(p) {
			if p == nil {
				t.Fatalf("span %q does not descend from the gateway's span:\n%s", sp.Name(), tree)
			}
		}
	}

	start, run := one("StartWorkflow:Order"), one("RunWorkflow:Order")
	if !isChild(start, root) || !isChild(run, start) {
		t.Errorf("want POST /v1/orders > StartWorkflow:Order > RunWorkflow:Order:\n%s", tree)
	}
	for _, st := range steps {
		sa, ra := one("StartActivity:"+st), one("RunActivity:"+st)
		if !isChild(sa, run) || !isChild(ra, sa) {
			t.Errorf("want RunWorkflow:Order > StartActivity:%s > RunActivity:%s:\n%s", st, st, tree)
		}
		sql := 0
		for _, sp := range spans {
			if attr(sp, "db.system.name") == "postgresql" && attr(sp, "db.query.text") != "" && descends(sp, ra) {
				sql++
			}
		}
		if sql == 0 {
			t.Errorf("no SQL span under RunActivity:%s:\n%s", st, tree)
		}
	}
	var provider sdktrace.ReadOnlySpan
	for _, sp := range spans {
		if sp.SpanKind() == trace.SpanKindClient && attr(sp, "http.request.method") == http.MethodPost &&
			isChild(sp, one("RunActivity:Authorize")) {
			provider = sp
		}
	}
	if provider == nil {
		t.Fatalf("no provider HTTP client span under RunActivity:Authorize:\n%s", tree)
	}
	served := false
	for _, sp := range spans {
		served = served || (sp.SpanKind() == trace.SpanKindServer && isChild(sp, provider))
	}
	if !served {
		t.Errorf("the provider's server span is not under the client span:\n%s", tree)
	}
}

// The log lines orderflow writes about an order (the gateway's, the saga's
// through workflow.GetLogger and the activities' through
// activity.GetLogger) carry order_id, workflow_id, request_id, trace_id and
// span_id, with the request id the client sent; and no line anywhere holds
// the order's payment token, even when the provider's decline message
// quotes it.
func TestOrderLogLinesCarryTheCorrelationKeysAndNeverThePaymentToken(t *testing.T) {
	s := newObservedStack(t)
	sku := testkit.Product(t, s.fixtures, 1500, 10)
	requestID := "obs-logs-" + uuid.NewString()[:8]
	// An unknown token is declined with "No such token: '<token>'", and the
	// decline makes the saga compensate, so the workflow and an activity log.
	token := "tok_obs" + strings.ReplaceAll(uuid.NewString(), "-", "")
	orderID, view := s.place(requestID, token, sku)
	if view.Status != orderflow.StatusFailed || view.FailureReason != order.ReasonPaymentDeclined {
		t.Fatalf("order ended %s (%s), want FAILED (payment_declined)", view.Status, view.FailureReason)
	}
	confirmedID, _ := s.place("obs-logs-ok-"+uuid.NewString()[:8], payment.TokenVisa, sku)
	s.trace("POST /v1/orders", "RunWorkflow:Order") // the access log line is written before the server span ends

	out := s.logs.String()
	t.Logf("log lines about order %s:\n%s", orderID, grepLines(out, orderID))
	// The scan of TestLogsAtDebugLevelHoldNoTokenSecretPasswordOrEmail:
	// these tokens, and any JWT, payment token or e-mail address.
	bearer := strings.TrimPrefix(s.tok.Minter.Bearer("c-obs", auth.RoleCustomer), "Bearer ")
	for _, h := range secretHits(out, token, payment.TokenVisa, bearer, s.tok.Config.HS256Secret) {
		t.Errorf("a log line holds %s", h)
	}
	from := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(l, orderID) {
			continue
		}
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		caller, _ := line["caller"].(string)
		// zap names the caller by its last folder: the gateway's, a saga's
		// (workflows/<area>) or an area's activities (activities/<area>).
		dir, _, _ := strings.Cut(caller, "/")
		pkg, ok := map[string]string{"api": "api", "order": "workflows",
			"catalog": "activities", "orders": "activities", "payment": "activities", "notify": "activities"}[dir]
		if !ok {
			continue // the SDK's and the provider's own lines
		}
		from[pkg]++
		want := map[string]string{logging.KeyOrderID: orderID, logging.KeyWorkflowID: order.WorkflowID(orderID), logging.KeyRequestID: requestID}
		for k, v := range want {
			if line[k] != v {
				t.Errorf("%s %q: %s = %v, want %s", caller, line["msg"], k, line[k], v)
			}
		}
		for _, k := range []string{logging.KeyTraceID, logging.KeySpanID} {
			if id, _ := line[k].(string); len(id) < 16 || strings.Trim(id, "0") == "" {
				t.Errorf("%s %q: %s = %v, want an id", caller, line["msg"], k, line[k])
			}
		}
	}
	for _, pkg := range []string{"api", "workflows", "activities"} {
		if from[pkg] == 0 {
			t.Errorf("no line from %s/ about order %s; lines:\n%s", pkg, orderID, grepLines(out, orderID))
		}
	}
	if !strings.Contains(out, confirmedID) {
		t.Errorf("no line about the confirmed order %s", confirmedID)
	}
}

func grepLines(out, s string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
