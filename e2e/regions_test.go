package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/lab"
	"github.com/orderflow/orderflow/devtools/regions"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/db"
	iregions "github.com/orderflow/orderflow/internal/regions"
	"github.com/orderflow/orderflow/schema"
	"github.com/orderflow/orderflow/workflows/order"
)

// regionDatabases brings up the databases of the regions profile only:
// each region's primary and the standby of the other region's primary that
// lives in it, the standbys named in their primaries'
// synchronous_standby_names (devtools/regions). It skips unless
// ORDERFLOW_TEST_REGIONS=1 (root: the hosts are network namespaces), on
// ORDERFLOW_TEST_REGIONS_NETWORK and ORDERFLOW_TEST_REGIONS_PORTS as the
// profile's own test.
func regionDatabases(t *testing.T) (*lab.Dev, *regions.Profile) {
	t.Helper()
	if os.Getenv("ORDERFLOW_TEST_REGIONS") != "1" || os.Geteuid() != 0 {
		t.Skip("ORDERFLOW_TEST_REGIONS=1, as root, runs the two-region tests (network namespaces)")
	}
	spec := os.Getenv("ORDERFLOW_TEST_REGIONS_NETWORK")
	if spec == "" {
		spec = "ofa:10.206.0.0/16"
	}
	nw, err := lab.ParseNetwork(spec)
	require.NoError(t, err)
	ports := os.Getenv("ORDERFLOW_TEST_REGIONS_PORTS")
	if ports == "" {
		ports = "free"
	}
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	data := filepath.Join(root, ".data", "regions-accept-test")
	require.NoError(t, lab.Wipe(data))
	d, err := lab.NewDev(lab.Options{Profile: "regions", Root: root, Data: data, Ports: ports, Network: &nw})
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := d.Down(); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, r := range regions.Names {
		require.NoError(t, d.Start(ctx, regions.Host(r, regions.RolePostgres)))
	}
	for _, r := range regions.Names {
		require.NoError(t, d.Start(ctx, regions.Host(r, regions.RoleStandby)))
	}
	p, err := regions.LoadProfile(data)
	require.NoError(t, err)
	return d, p
}

// The gateway answers 202 only once the acceptance record is on the other
// region's standby; while that standby is lost it answers 503
// acceptance_not_durable with Retry-After, a retry with the same key too,
// never a 2xx, and no server process is left waiting; once the failover
// drops the lost standby from synchronous_standby_names, the retry gets the
// first answer. The saga's other writes are not what is tested here: only
// the record waits (docs/regions.md).
func TestAnOrderIsAcceptedOnlyOnceItsRecordIsInBothRegions(t *testing.T) {
	d, p := regionDatabases(t)
	ctx := context.Background()
	pool, err := db.Open(ctx, p.DatabaseURL("east"))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, schema.Migrate(ctx, pool))
	westCopy, err := pgx.Connect(ctx, p.StandbyURL("west", "orderflow"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = westCopy.Close(context.Background()) })

	tok := testkit.Auth(t)
	tc := testkit.Temporal(t)
	srv := &api.Server{DB: pool, Cache: testkit.Redis(t), Temporal: tc, Log: zaptest.NewLogger(t), Auth: tok.Auth, PII: testkit.PII(t),
		Config: api.Config{Region: "east-" + uuid.NewString()[:8], AcceptCommit: "remote_apply"}}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	sku := testkit.Product(t, pool, 450, 100)
	customer := "c-" + uuid.NewString()[:8]
	place := func(key string) (int, http.Header, map[string]any) {
		b, _ := json.Marshal(map[string]any{"customer_id": customer, "email": "r@example.com", "payment_token": "tok_visa",
			"items": []map[string]any{{"sku": sku, "quantity": 1}}, "shipping_address": map[string]any{
				"name": "Ada", "line1": "1 Main St", "city": "London", "postal_code": "N1 9GU", "country": "GB"}})
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/orders", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(api.HeaderIdempotencyKey, key)
		req.Header.Set("Authorization", tok.Bearer(customer, auth.RoleCustomer))
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		return res.StatusCode, res.Header, m
	}
	onStandby := func(orderID string) bool {
		var n int
		require.NoError(t, westCopy.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE order_id = $1`, orderID).Scan(&n))
		return n == 1
	}
	var started []string
	t.Cleanup(func() {
		for _, id := range started {
			_ = tc.TerminateWorkflow(context.Background(), order.WorkflowID(id), "", "test over")
		}
	})

	status, _, body := place("k-1")
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	first := body["order_id"].(string)
	started = append(started, first)
	assert.True(t, onStandby(first), "the record is applied on west's copy before the 202")

	require.NoError(t, d.Kill(regions.Host("west", regions.RoleStandby)))
	status, hdr, body := place("k-2")
	assert.Equal(t, http.StatusServiceUnavailable, status, "%v", body)
	assert.Equal(t, "acceptance_not_durable", body["error"].(map[string]any)["code"])
	assert.NotEmpty(t, hdr.Get("Retry-After"))
	status, _, body = place("k-2")
	assert.Equal(t, http.StatusServiceUnavailable, status, "a retry is not answered from a record west does not have: %v", body)
	// pg_cancel_backend signals: the processes leave the wait moments later.
	assert.Eventually(t, func() bool {
		var waiting int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'`).Scan(&waiting)
		return err == nil && waiting == 0
	}, 10*time.Second, 50*time.Millisecond, "the gateway cancels the commits it gave up on")
	status, _, _ = place("k-1")
	assert.Equal(t, http.StatusServiceUnavailable, status, "even a replay of a durable record waits for the standby (it rewrites the row)")

	// The failover's step: east's primary stops waiting for west.
	_, err = iregions.DropSyncStandby(ctx, p.PrimaryAdminURL("east", "postgres"), "west")
	require.NoError(t, err)
	status, hdr, body = place("k-2")
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	assert.Equal(t, "true", hdr.Get(api.HeaderReplayed), "the record the 503s left is the one answered")
	started = append(started, body["order_id"].(string))

	// The store says the same without the gateway.
	store := orders.Store{DB: pool, AcceptCommit: "remote_apply"}
	_, err = iregions.RequireSyncStandby(ctx, p.PrimaryAdminURL("east", "postgres"), "west")
	require.NoError(t, err)
	tctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err = store.ClaimKey(tctx, "c-store", "create_order", uuid.NewString(),
		orders.Acceptance{OrderID: uuid.NewString(), RequestHash: []byte("h"), Status: 202, Body: []byte(`{}`)}, time.Hour)
	require.Error(t, err, "no standby to wait for: never a success")
	assert.True(t, pgconn.Timeout(err), "%v", err)
}
