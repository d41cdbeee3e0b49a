package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

// The history and search benchmarks run GET /v1/orders and GET
// /v1/products?q= through the gateway's handler (authentication, rate
// limiting off, JSON) on real PostgreSQL and Redis, with 100,000 orders and
// 100,000 products in the database, and report the latency percentiles of
// the requests:
//
//	ORDERFLOW_TEST_DATABASE_URL=... ORDERFLOW_TEST_REDIS_URL=... \
//	  go test -run '^$' -bench 'OrderHistory|ProductSearch' -benchtime 3000x ./api/
//
// The rows are added once (benchmark customers and SKUs have the bench-
// and BENCH- prefixes) and kept, so use a database of its own: the suite's
// list tests would page through them.
const (
	benchOrders      = 100_000
	benchHeavyOrders = 20_000 // one customer's: the longest history
	benchCustomers   = 1_600  // the other 80,000, 50 each
	benchProducts    = 100_000
)

// seedBench adds the benchmark's orders and products unless they are there.
func seedBench(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	ctx := context.Background()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM orders WHERE region = 'bench'`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	if n < benchOrders {
		// Statuses as a day of traffic leaves them: mostly confirmed.
		_, err := pool.Exec(ctx, `INSERT INTO orders (order_id, customer_id, region, status, total_cents, currency, created_at, updated_at)
			SELECT gen_random_uuid(), CASE WHEN g <= $2 THEN 'bench-heavy' ELSE 'bench-' || (g % $3) END, 'bench',
				(ARRAY['CONFIRMED','CONFIRMED','CONFIRMED','CONFIRMED','FAILED','CANCELLED','PENDING','PAYMENT_PENDING'])[1 + g % 8],
				100 + g % 9000, 'USD', now() - g * interval '7 seconds', now()
			FROM generate_series(1, $1) g`, benchOrders, benchHeavyOrders, benchCustomers)
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM products WHERE sku LIKE 'BENCH-%'`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	if n < benchProducts {
		// Names of three words of small vocabularies and a model code: a
		// color is in 1 name of 12, a kind in 1 of 40, a brand in 1 of 25.
		_, err := pool.Exec(ctx, `WITH p AS (
				INSERT INTO products (sku, name, price_cents)
				SELECT 'BENCH-' || lpad(g::text, 6, '0'),
					(ARRAY['Acme','Bolt','Crest','Delta','Ember','Fjord','Gale','Helix','Iris','Juno','Kite','Lumen','Mesa',
						'Nova','Orbit','Pike','Quill','Rook','Sable','Tarn','Umber','Vale','Wren','Yarrow','Zephyr'])[1 + g % 25] || ' ' ||
					(ARRAY['red','blue','green','black','white','grey','orange','purple','yellow','navy','olive','teal'])[1 + (g / 25) % 12] || ' ' ||
					(ARRAY['boots','sandals','jacket','gloves','scarf','backpack','tent','lantern','stove','kettle','mug','bottle',
						'compass','rope','helmet','goggles','parka','vest','shorts','socks','beanie','poncho','tarp','hammock',
						'pillow','blanket','chair','table','cooler','knife','saw','axe','shovel','map','whistle','torch','charger',
						'radio','watch','belt'])[1 + (g / 300) % 40] || ' m' || (g % 1000),
					100 + g % 20000
				FROM generate_series(1, $1) g
				RETURNING sku)
			INSERT INTO inventory (sku, on_hand) SELECT sku, 100 FROM p`, benchProducts)
		if err != nil {
			b.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `ANALYZE orders, products, inventory`); err != nil {
		b.Fatal(err)
	}
}

// benchGateway serves the gateway on PostgreSQL and Redis with the
// benchmark's rows.
func benchGateway(b *testing.B) (url string, tok testkit.Tokens) {
	b.Helper()
	pool := testkit.DB(b)
	seedBench(b, pool)
	tok = testkit.Auth(b)
	srv := &Server{DB: pool, Cache: testkit.Redis(b), Log: zap.NewNop(), Auth: tok.Auth}
	srv.Region = "bench"
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(hs.Close)
	return hs.URL, tok
}

// latencies runs b.N requests, path(i) each, one at a time, and reports
// their p50, p99 and maximum in milliseconds. Any answer but 200 fails.
func latencies(b *testing.B, base, bearer string, path func(i int) string) {
	b.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		req, _ := http.NewRequest(http.MethodGet, base+path(i), nil)
		req.Header.Set("Authorization", bearer)
		start := time.Now()
		res, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		took = append(took, time.Since(start))
		if res.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d %s", path(i), res.StatusCode, body)
		}
	}
	b.StopTimer()
	slices.Sort(took)
	ms := func(q float64) float64 {
		return float64(took[min(len(took)-1, int(q*float64(len(took))))].Microseconds()) / 1000
	}
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
}

// nextCursor reads a page's next cursor.
func nextCursor(b *testing.B, base, bearer, path string) string {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Authorization", bearer)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var page struct{ Next string }
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil || page.Next == "" {
		b.Fatalf("GET %s: no next page (%v)", path, err)
	}
	return page.Next
}

func BenchmarkOrderHistory(b *testing.B) {
	base, tok := benchGateway(b)
	operator := tok.Bearer("bench-operator", auth.RoleOperator)
	// A cursor deep into the longest history: its 10,001st order.
	deep := nextCursor(b, base, operator, "/v1/orders?customer_id=bench-heavy&limit=100")
	for range 99 {
		deep = nextCursor(b, base, operator, "/v1/orders?customer_id=bench-heavy&limit=100&after="+url.QueryEscape(deep))
	}
	for _, tc := range []struct {
		name string
		path func(r *rand.Rand) string
	}{
		{"first-page", func(r *rand.Rand) string {
			return fmt.Sprintf("/v1/orders?customer_id=bench-%d", r.IntN(benchCustomers))
		}},
		{"status-filter", func(r *rand.Rand) string {
			return fmt.Sprintf("/v1/orders?customer_id=bench-%d&status=FAILED", r.IntN(benchCustomers))
		}},
		{"longest-history", func(*rand.Rand) string { return "/v1/orders?customer_id=bench-heavy&limit=100" }},
		{"longest-history-rare-status", func(*rand.Rand) string { return "/v1/orders?customer_id=bench-heavy&status=PAYMENT_PENDING" }},
		{"longest-history-deep-page", func(*rand.Rand) string {
			return "/v1/orders?customer_id=bench-heavy&after=" + url.QueryEscape(deep)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			latencies(b, base, operator, func(int) string { return tc.path(r) })
		})
	}
}

func BenchmarkProductSearch(b *testing.B) {
	base, tok := benchGateway(b)
	bearer := tok.Bearer("bench-shopper", auth.RoleCustomer)
	colors := []string{"red", "blue", "green", "black", "white", "grey", "orange", "purple", "yellow", "navy", "olive", "teal"}
	kinds := []string{"boots", "jacket", "tent", "lantern", "kettle", "compass", "helmet", "parka", "hammock", "cooler"}
	for _, tc := range []struct {
		name string
		q    func(r *rand.Rand) string
	}{
		// About 8,300 matches each (1 name in 12): found in SKU order.
		{"one-color", func(r *rand.Rand) string { return colors[r.IntN(len(colors))] }},
		// About 2,500.
		{"one-kind", func(r *rand.Rand) string { return kinds[r.IntN(len(kinds))] }},
		// About 200.
		{"color-and-kind", func(r *rand.Rand) string { return colors[r.IntN(len(colors))] + " " + kinds[r.IntN(len(kinds))] }},
		// A stem: "boot" finds boots.
		{"stem", func(r *rand.Rand) string { return "boot " + colors[r.IntN(len(colors))] }},
		{"sku-prefix", func(r *rand.Rand) string { return fmt.Sprintf("BENCH-%04d", r.IntN(1000)) }},
		{"exact-sku", func(r *rand.Rand) string { return fmt.Sprintf("BENCH-%06d", 1+r.IntN(benchProducts)) }},
		// Every product matches, by its SKU: 100,000 matches, a page read.
		{"every-product", func(*rand.Rand) string { return "bench" }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 4))
			latencies(b, base, bearer, func(int) string { return "/v1/products?q=" + url.QueryEscape(tc.q(r)) })
		})
	}
}
