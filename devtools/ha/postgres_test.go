package ha

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/db"
)

func TestPostgresFailoverPromotesTheSyncStandbyAndTheAppPoolWritesAgain(t *testing.T) {
	root, base := haEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	p := &PostgresHA{Root: root, Data: patroniData(t), PortBase: base + 300}
	start := time.Now()
	bringUp(ctx, t, p)
	t.Logf("etcd and Patroni up in %s", time.Since(start).Round(time.Second))
	if err := p.CreateDatabase(ctx, "orderflow", "orderflow", "orderflow"); err != nil {
		t.Fatal(err)
	}
	// The pool the product opens, on the multi-host DSN.
	pool, err := db.Open(ctx, p.DSN("orderflow", "orderflow", "orderflow"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS drill (n int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	const before = 200
	for n := range before {
		if _, err := pool.Exec(ctx, "INSERT INTO drill VALUES ($1)", n); err != nil {
			t.Fatal(err)
		}
	}
	primary, standby, err := p.Roles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.KillMember(primary); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	failed := 0
	for n := before; ; n++ {
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := pool.Exec(wctx, "INSERT INTO drill VALUES ($1)", n)
		wcancel()
		if err == nil {
			break
		}
		failed++
		if time.Since(killed) > 2*time.Minute {
			t.Fatalf("no write succeeded within 2 minutes of killing %s: %v", MemberName(primary), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	rto := time.Since(killed)
	newPrimary, err := p.Primary(ctx)
	if err != nil || newPrimary != standby {
		t.Fatalf("primary after the failover = %d, want the synchronous standby %s", newPrimary, MemberName(standby))
	}
	// Synchronous replication: every write acknowledged before the kill is
	// on the promoted standby.
	var kept int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM drill WHERE n < $1", before).Scan(&kept); err != nil || kept != before {
		t.Fatalf("rows acknowledged before the failover found after it = %d, %v; want %d", kept, err, before)
	}
	t.Logf("killed primary %s: the pool wrote to %s %s later (%d writes failed meanwhile); all %d acknowledged rows kept",
		MemberName(primary), MemberName(newPrimary), rto.Round(100*time.Millisecond), failed, before)
	// The old primary comes back as the new synchronous standby.
	if err := p.Stack().Start(ctx, MemberName(primary)); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, checkFunc{"the old primary rejoins as synchronous standby", func(ctx context.Context) error {
		_, _, err := p.Roles(ctx)
		return err
	}}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// patroniData is a test's directory for a Patroni cluster: Patroni runs as
// postgres, which must reach it.
func patroniData(t *testing.T) string {
	t.Helper()
	data := t.TempDir()
	for d := data; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return data
}
