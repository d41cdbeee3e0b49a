package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/schema"
)

// Patterns of what no log line may hold, whatever its value: a JWT (its
// header and payload are base64url JSON, so both start eyJ), a provider's
// payment token, an e-mail address.
var (
	jwtPattern   = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}`)
	tokenPattern = regexp.MustCompile(`\btok_[A-Za-z0-9_]+`)
	emailPattern = regexp.MustCompile(`[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)
)

// secretHits returns the lines of logs that hold one of the literal secrets
// or match a pattern above, each with what it matched.
func secretHits(logs string, literals ...string) []string {
	var hits []string
	for _, line := range strings.Split(logs, "\n") {
		for _, s := range literals {
			if s != "" && strings.Contains(line, s) {
				hits = append(hits, fmt.Sprintf("secret %.6s…: %s", s, line))
			}
		}
		for _, p := range []*regexp.Regexp{jwtPattern, tokenPattern, emailPattern} {
			if m := p.FindString(line); m != "" {
				hits = append(hits, fmt.Sprintf("%q: %s", m, line))
			}
		}
	}
	return hits
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// `orderflow api` and `orderflow worker`, run as the deployment runs them
// but at debug level, with a database and a Redis that take passwords,
// place confirmed and declined orders and go through the error paths (no,
// forged and expired tokens, malformed and invalid bodies quoting an
// e-mail address and a payment token, an unknown SKU, another customer's
// order, Redis and then PostgreSQL going down); no line either process
// writes, start-up and shutdown included, holds a bearer token or any
// JWT, the HS256 secret, a payment token, the database or Redis password,
// or an e-mail address.
func TestLogsAtDebugLevelHoldNoTokenSecretPasswordOrEmail(t *testing.T) {
	ctx := context.Background()
	temporalAddr := testkit.Require(t, testkit.EnvTemporal)
	logs := &lockedBuffer{}
	pgPassword, redisPassword := "pgpw"+randomHex(12), "rdpw"+randomHex(12)
	authCfg := testkit.AuthConfig()
	tok := testkit.AuthWith(t, authCfg)
	forged := testkit.AuthWith(t, testkit.AuthConfig()).Minter.MustMint("c-forged", time.Hour, auth.RoleCustomer)
	victim := "victim." + randomHex(4) + "@example.com"
	declinedToken := "tok_leak" + randomHex(8)
	var secrets []string

	// The scan runs last, once both processes have exited and flushed.
	t.Cleanup(func() {
		out := logs.String()
		lines := strings.Count(out, "\n")
		if lines < 20 || !strings.Contains(out, `"level":"debug"`) || !strings.Contains(out, "starting gateway") {
			t.Fatalf("captured %d lines, without debug lines or the gateway's start: the scan would prove nothing:\n%s", lines, out)
		}
		for _, h := range secretHits(out, secrets...) {
			t.Errorf("a log line holds %s", h)
		}
		t.Logf("scanned %d log lines", lines)
	})

	pg := testkit.PostgresServer(t)
	u, _ := url.Parse(pg.URL)
	u.User = url.UserPassword("postgres", pgPassword)
	pool, err := db.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := schema.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	rs := testkit.NewRedisServerWithPassword(t, redisPassword)
	provider := testkit.StartPaysim(t, "paysim-logscan")
	gateway := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	workerAddr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	env := []string{
		"DATABASE_URL=" + u.String(), "REDIS_URL=" + rs.URL(), "TEMPORAL_ADDRESS=" + temporalAddr,
		"ORDERFLOW_REGION=logscan-" + uuid.NewString()[:8], "LOG_LEVEL=debug", "LOG_FORMAT=json",
		"PAYMENT_PROVIDERS=paysim-logscan=paysim:" + provider.URL, "API_ADDR=" + gateway, "WORKER_HEALTH_ADDR=" + workerAddr,
		"AUTH_HS256_SECRET=" + authCfg.HS256Secret,
	}
	startProcessTo(t, logs, env, "http://"+workerAddr+"/health/live", "worker")
	startProcessTo(t, logs, env, "http://"+gateway+"/health/live", "api")
	s := &stack{t: t, pool: pool, url: "http://" + gateway, tok: tok}
	expired := s.forge(authCfg.HS256Secret, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })
	operator := s.tok.Operator()
	cust := customer()
	custBearer := s.as(cust)
	// The shipping address is personal data too: its street must not reach a log.
	address := shipTo()
	address.Line1 = "Secret Street " + randomHex(6)
	secrets = append(secrets, authCfg.HS256Secret, pgPassword, redisPassword, forged, expired, victim, declinedToken,
		strings.TrimPrefix(operator, "Bearer "), strings.TrimPrefix(custBearer, "Bearer "), address.Line1)

	sku := testkit.Product(t, pool, 1200, 100)
	order := func(token, email string) []byte {
		b, _ := json.Marshal(orderReq{Items: []api.OrderItem{{SKU: sku, Quantity: 1}}, PaymentToken: token, Email: email, ShippingAddress: address})
		return b
	}
	as := func(bearer string) map[string]string {
		return map[string]string{"Authorization": bearer, api.HeaderIdempotencyKey: uuid.NewString()}
	}
	expect := func(what string, want int, r response) {
		t.Helper()
		if r.status != want {
			t.Errorf("%s: %d %s, want %d", what, r.status, r.body, want)
		}
	}

	// A confirmed order and a declined one (whose decline message quotes
	// the token), both to the end of their sagas.
	var ok, declined api.Accepted
	r := s.do(http.MethodPost, "/v1/orders", as(custBearer), order(payment.TokenVisa, victim))
	expect("confirmed order", http.StatusAccepted, r)
	r.json(t, &ok)
	r = s.do(http.MethodPost, "/v1/orders", as(custBearer), order(declinedToken, victim))
	expect("declined order", http.StatusAccepted, r)
	r.json(t, &declined)
	if o := s.waitTerminal(ok.OrderID); o.Status != orderflow.StatusConfirmed {
		t.Errorf("order %s ended %s", ok.OrderID, o.Status)
	}
	if o := s.waitTerminal(declined.OrderID); o.Status != orderflow.StatusFailed {
		t.Errorf("order %s ended %s", declined.OrderID, o.Status)
	}

	// Error paths.
	expect("no token", http.StatusUnauthorized, s.do(http.MethodPost, "/v1/orders", map[string]string{"Authorization": ""}, order(declinedToken, victim)))
	expect("forged token", http.StatusUnauthorized, s.do(http.MethodGet, "/v1/orders/"+ok.OrderID, map[string]string{"Authorization": "Bearer " + forged}, nil))
	expect("expired token", http.StatusUnauthorized, s.do(http.MethodGet, "/v1/orders/"+ok.OrderID, map[string]string{"Authorization": "Bearer " + expired}, nil))
	expect("token as a query parameter", http.StatusUnauthorized, s.do(http.MethodGet, "/v1/orders/"+ok.OrderID+"?access_token="+expired, map[string]string{"Authorization": ""}, nil))
	truncated := order(declinedToken, victim)
	expect("truncated body", http.StatusBadRequest, s.do(http.MethodPost, "/v1/orders", as(custBearer), truncated[:len(truncated)-3]))
	expect("unknown field", http.StatusBadRequest, s.do(http.MethodPost, "/v1/orders", as(custBearer),
		[]byte(`{"card":"`+declinedToken+`","contact":"`+victim+`"}`)))
	expect("bad e-mail", http.StatusBadRequest, s.do(http.MethodPost, "/v1/orders", as(custBearer), order(declinedToken, "Victim <"+victim+">")))
	b, _ := json.Marshal(orderReq{Items: []api.OrderItem{{SKU: "NO-SUCH-" + randomHex(4), Quantity: 1}}, PaymentToken: declinedToken, Email: victim,
		ShippingAddress: shipTo()})
	expect("unknown sku", http.StatusUnprocessableEntity, s.do(http.MethodPost, "/v1/orders", as(custBearer), b))
	expect("another customer's order", http.StatusNotFound, s.do(http.MethodGet, "/v1/orders/"+ok.OrderID, map[string]string{"Authorization": s.as(customer())}, nil))

	// Redis down: the gateway falls back to PostgreSQL and says so.
	rs.Stop()
	expect("order with Redis down", http.StatusAccepted, s.do(http.MethodPost, "/v1/orders", as(custBearer), order(payment.TokenVisa, victim)))
	expect("read with Redis down", http.StatusOK, s.do(http.MethodGet, "/v1/orders/"+ok.OrderID, map[string]string{"Authorization": custBearer}, nil))
	// PostgreSQL down: 503, and the gateway logs the error it got.
	pg.Stop()
	expect("order with PostgreSQL down", http.StatusServiceUnavailable, s.do(http.MethodPost, "/v1/orders", as(custBearer), order(payment.TokenVisa, victim)))
}

// The scan finds each kind of secret in a line and passes the lines the
// processes write about their settings (passwords masked).
func TestSecretHitsFindsEveryKind(t *testing.T) {
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjLTEifQ.c2lnbmF0dXJl"
	for _, line := range []string{
		`{"msg":"request","authorization":"Bearer ` + jwt + `"}`,
		`{"msg":"charge","token":"tok_visa"}`,
		`{"msg":"declined","error":"No such token: 'tok_abc123'"}`,
		`{"msg":"sent","to":"o'brien.x@mail.example.co.uk"}`,
		`{"msg":"config","redis":"redis://:hunter2hunter2@cache:6379/0"}`,
	} {
		if len(secretHits(line, "hunter2hunter2")) == 0 {
			t.Errorf("no hit in %s", line)
		}
	}
	for _, line := range []string{
		`{"level":"info","msg":"starting gateway","config":"database=postgres://orderflow:xxxxx@127.0.0.1:5432/orderflow?sslmode=disable redis=redis://:xxxxx@127.0.0.1:6379/0"}`,
		`{"level":"debug","msg":"request","order_id":"0b6f5c3e-0000-4000-8000-000000000000","status":202}`,
	} {
		if hits := secretHits(line, "hunter2hunter2"); len(hits) != 0 {
			t.Errorf("false hits: %q", hits)
		}
	}
}
