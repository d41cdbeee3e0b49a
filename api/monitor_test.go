package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/monitor"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

// Operators list the monitor's findings a page at a time, by kind, open
// ones unless all=true; customers may not.
func TestOperatorsListTheMonitorsFindingsByKindAPageAtATime(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), nil)
	ctx := context.Background()
	// Subjects of this test's own, so findings other tests left are told apart.
	a, b := "SKU-MON-"+uuid.NewString()[:8], "SKU-MON-"+uuid.NewString()[:8]
	store := monitor.Store{DB: g.pool}
	seen := time.Now().UTC().Truncate(time.Second)
	for _, f := range []monitor.Finding{
		{Kind: monitor.KindStockDrift, Subject: a, Detail: a + ": off by one"},
		{Kind: monitor.KindStockDrift, Subject: b, Detail: b + ": off by two"},
	} {
		opened, err := store.Record(ctx, "test", []monitor.Finding{f}, seen)
		require.NoError(t, err)
		require.Equal(t, 1, opened)
	}
	op := map[string]string{echo.HeaderAuthorization: g.tok.Operator()}

	page := func(q url.Values) FindingsPageJSON {
		t.Helper()
		ans := g.do(http.MethodGet, "/v1/monitor/findings?"+q.Encode(), op, nil)
		require.Equal(t, http.StatusOK, ans.status, "%s", ans.body)
		var p FindingsPageJSON
		require.NoError(t, json.Unmarshal(ans.body, &p))
		return p
	}
	var mine []FindingJSON
	q := url.Values{"kind": {monitor.KindStockDrift}, "limit": {"1"}}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10000, "paging ends")
		p := page(q)
		require.LessOrEqual(t, len(p.Findings), 1)
		for _, f := range p.Findings {
			assert.Equal(t, monitor.KindStockDrift, f.Kind)
			if f.Subject == a || f.Subject == b {
				mine = append(mine, f)
			}
		}
		if p.Next == "" {
			break
		}
		q.Set("after", p.Next)
	}
	require.Len(t, mine, 2, "both findings, one page each")
	assert.Equal(t, a, mine[0].Subject, "oldest first")
	assert.Equal(t, a+": off by one", mine[0].Detail)
	assert.True(t, mine[0].FirstSeen.Equal(seen))
	assert.Nil(t, mine[0].ResolvedAt)

	// Resolved findings show with all=true only.
	_, err := store.Resolve(ctx, "test", []string{monitor.KindStockDrift}, seen.Add(time.Second))
	require.NoError(t, err)
	has := func(p FindingsPageJSON) bool {
		for _, f := range p.Findings {
			if f.Subject == a {
				return true
			}
		}
		return false
	}
	after := url.Values{"kind": {monitor.KindStockDrift}, "after": {encodeCursor(cursorFindings, "0")}, "limit": {"200"}}
	for p := page(after); ; p = page(after) {
		require.False(t, has(p), "a resolved finding is not listed as open")
		if p.Next == "" {
			break
		}
		after.Set("after", p.Next)
	}
	after = url.Values{"kind": {monitor.KindStockDrift}, "all": {"true"}, "after": {encodeCursor(cursorFindings, "0")}, "limit": {"200"}}
	found := false
	for p := page(after); ; p = page(after) {
		found = found || has(p)
		if p.Next == "" {
			break
		}
		after.Set("after", p.Next)
	}
	assert.True(t, found, "all=true lists it, resolved")

	ans := g.do(http.MethodGet, "/v1/monitor/findings", map[string]string{echo.HeaderAuthorization: g.tok.Bearer("c-mon", auth.RoleCustomer)}, nil)
	assert.Equal(t, http.StatusForbidden, ans.status, "%s", ans.body)
}

// Bad input on GET /v1/monitor/findings is a 400 with the JSON error body.
func TestBadInputToTheFindingsListIsA400(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), nil)
	op := map[string]string{echo.HeaderAuthorization: g.tok.Operator()}
	for _, tc := range []struct{ query, code string }{
		{"kind=nonsense", "invalid_request"},
		{"kind=", "invalid_request"},
		{"all=yes", "invalid_request"},
		{"all=1", "invalid_request"},
		{"limit=0", "invalid_request"},
		{"limit=201", "invalid_request"},
		{"limit=ten", "invalid_request"},
		{"after=not-a-cursor", "invalid_cursor"},
		{"after=" + encodeCursor(cursorAudit, "5"), "invalid_cursor"},
		{"after=" + encodeCursor(cursorFindings, "-1"), "invalid_cursor"},
		{"kind=stock_drift&kind=lost_order", "invalid_request"},
		{"status=open", "unknown_parameter"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			ans := g.do(http.MethodGet, "/v1/monitor/findings?"+tc.query, op, nil)
			require.Equal(t, http.StatusBadRequest, ans.status, "%s", ans.body)
			assert.Equal(t, tc.code, ans.errorCode(t))
		})
	}
}
