package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

func (g *gateway) auditPage(query string) AuditPageJSON {
	g.t.Helper()
	a := g.do(http.MethodGet, "/v1/audit?"+query, nil, nil)
	require.Equal(g.t, http.StatusOK, a.status, "%s", a.body)
	var p AuditPageJSON
	require.NoError(g.t, json.Unmarshal(a.body, &p))
	return p
}

// An operator's product write and stock transfer are in the audit log with
// who, in which role, why and under which request, and an admin reads them
// a page at a time by target and by actor.
func TestOperatorActsAreInTheAuditLogWhichAdminsReadByTargetAndActor(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), nil)
	sku := "AUD-" + uuid.NewString()[:8]
	actor := "ops-" + uuid.NewString()[:8]
	op := map[string]string{echo.HeaderAuthorization: g.tok.Bearer(actor, auth.RoleOperator), HeaderAuditReason: "spring restock",
		echo.HeaderXRequestID: "req-" + sku}
	a := g.do(http.MethodPut, "/v1/products/"+sku, op, PutProductRequest{Name: ptr("lamp"), PriceCents: ptr(int64(990)), OnHand: ptr(8)})
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	a = g.do(http.MethodPost, "/v1/stock/transfers", op, TransferRequest{SKU: sku, From: "main", To: "east", Quantity: 3})
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)

	target := url.Values{"target": {"product:" + sku}, "limit": {"1"}}
	first := g.auditPage(target.Encode())
	require.Len(t, first.Entries, 1)
	require.NotEmpty(t, first.Next, "a second page")
	e := first.Entries[0]
	assert.Equal(t, actor, e.Actor)
	assert.Equal(t, "operator", e.Role)
	assert.Equal(t, actionProductPut, e.Action)
	assert.Equal(t, "spring restock", e.Reason)
	assert.Equal(t, "req-"+sku, e.RequestID)
	assert.JSONEq(t, `{"name":"lamp","price_cents":990,"on_hand":8,"currency":null}`, string(e.Details))
	assert.Len(t, e.Hash, 64)

	target.Set("after", first.Next)
	second := g.auditPage(target.Encode())
	require.Len(t, second.Entries, 1)
	assert.Empty(t, second.Next, "the last page")
	assert.Equal(t, actionStockTransfer, second.Entries[0].Action)
	assert.Equal(t, e.ID < second.Entries[0].ID, true, "oldest first")

	byActor := g.auditPage(url.Values{"actor": {actor}}.Encode())
	assert.Len(t, byActor.Entries, 2)

	// An admin's erasure is recorded under the admin role.
	customer := "c-aud-" + uuid.NewString()[:8]
	_, err := g.pool.Exec(context.Background(), `INSERT INTO orders (order_id, customer_id, region, status, total_cents, currency)
		VALUES ($1, $2, 'test', 'DELIVERED', 100, 'USD')`, uuid.NewString(), customer)
	require.NoError(t, err)
	a = g.do(http.MethodDelete, "/v1/customers/"+customer+"/pii", nil, nil)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	erased := g.auditPage(url.Values{"target": {"customer:" + customer}}.Encode())
	require.Len(t, erased.Entries, 1)
	assert.Equal(t, "admin", erased.Entries[0].Role)
	assert.Equal(t, actionErasePII, erased.Entries[0].Action)
}

// A product write whose audit row cannot be appended is not made: both
// commit in one transaction.
func TestAProductWriteCommitsOnlyWithItsAuditRow(t *testing.T) {
	ctx := context.Background()
	pool := testkit.DB(t)
	// The gateway's connections find, ahead of the real audit log, one in
	// a schema of this test's that refuses every row as a serialization
	// failure would (a retryable error: 503).
	ns := "audit_fails_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	for _, stmt := range []string{
		`CREATE SCHEMA ` + ns,
		`CREATE TABLE ` + ns + `.audit_log (LIKE public.audit_log INCLUDING DEFAULTS)`,
		`CREATE FUNCTION ` + ns + `.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'serialization_failure'; END $$`,
		`CREATE TRIGGER refuse BEFORE INSERT ON ` + ns + `.audit_log FOR EACH ROW EXECUTE FUNCTION ` + ns + `.refuse()`,
	} {
		_, err := pool.Exec(ctx, stmt)
		require.NoError(t, err, stmt)
	}
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP SCHEMA `+ns+` CASCADE`) })
	cfg := pool.Config()
	cfg.ConnConfig.RuntimeParams["search_path"] = ns + ", public"
	refusing, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(refusing.Close)
	g := newGateway(t, testkit.Redis(t), func(s *Server) { s.DB = refusing })

	sku := "AUD-" + uuid.NewString()[:8]
	a := g.do(http.MethodPut, "/v1/products/"+sku, nil, PutProductRequest{Name: ptr("lamp"), PriceCents: ptr(int64(990)), OnHand: ptr(8)})
	assert.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a.body)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM products WHERE sku = $1`, sku).Scan(&n))
	assert.Zero(t, n, "the product was written without its audit row")
}

func TestTheAuditLogIsForAdminsAndRefusesBadQueriesWith400(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), nil)
	for _, tok := range []string{g.tok.Operator(), g.tok.Bearer("c-1", auth.RoleCustomer)} {
		a := g.do(http.MethodGet, "/v1/audit", map[string]string{echo.HeaderAuthorization: tok}, nil)
		assert.Equal(t, http.StatusForbidden, a.status, "%s", a.body)
	}
	for q, code := range map[string]string{
		"after=nonsense":                     "invalid_cursor",
		"after=" + encodeCursor("o1", "1"):   "invalid_cursor",
		"after=" + encodeCursor("a1", "-4"):  "invalid_cursor",
		"limit=0":                            "invalid_request",
		"limit=201":                          "invalid_request",
		"actor=":                             "invalid_request",
		"target=" + strings.Repeat("t", 201): "invalid_request",
		"actor=a%00b":                        "invalid_request",
		"target=a%0Ab":                       "invalid_request",
		"who=me":                             "unknown_parameter",
		"actor=a&actor=b":                    "invalid_request",
	} {
		a := g.do(http.MethodGet, "/v1/audit?"+q, nil, nil)
		assert.Equal(t, http.StatusBadRequest, a.status, "%s: %s", q, a.body)
		assert.Equal(t, code, a.errorCode(t), q)
	}
}
