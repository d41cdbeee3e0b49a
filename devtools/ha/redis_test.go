package ha

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/cache"
)

func TestRedisClientFollowsSentinelPromotionWhenTheMasterIsKilled(t *testing.T) {
	root, base := haEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := &RedisHA{Root: root, Data: t.TempDir(), PortBase: base + 200}
	bringUp(ctx, t, r)
	// The URL's host is not used with Sentinels: only its database number.
	rc, err := cache.Connect(cache.Config{URL: "redis://unused:6379/0", Sentinels: r.Sentinels(), MasterName: r.MasterName})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := rc.Set(ctx, "ha:probe", "before", 0).Err(); err != nil {
		t.Fatalf("write through the sentinels: %v", err)
	}
	old, err := r.Master(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim, err := r.NodeOf(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Stack().Kill(victim); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// Writes fail until the Sentinels promote the replica; then the same
	// client writes to the new master. Bounded at 60 s (the objective is
	// 15 s; the figure is logged).
	var writes, failed int
	for {
		writes++
		err := rc.Set(ctx, "ha:probe", "after-"+strconv.Itoa(writes), 0).Err()
		if err == nil {
			break
		}
		failed++
		if time.Since(killed) > time.Minute {
			t.Fatalf("no write succeeded within a minute of killing %s: %v", victim, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rto := time.Since(killed)
	now, err := r.Master(ctx)
	if err != nil || now == old {
		t.Fatalf("master after the failover = %s, %v; was %s", now, err, old)
	}
	if got := rc.Get(ctx, "ha:probe").Val(); got != "after-"+strconv.Itoa(writes) {
		t.Fatalf("read after the failover = %q, want the last write", got)
	}
	cache.SetJSON(ctx, rc, nil, cache.ProductKey("HA-1"), map[string]string{"sku": "HA-1"}, time.Minute)
	var p map[string]string
	if !cache.GetJSON(ctx, rc, nil, cache.ProductKey("HA-1"), &p) || p["sku"] != "HA-1" {
		t.Fatalf("the cache tiers after the failover: %v", p)
	}
	t.Logf("killed master %s (%s): the client wrote to the new master %s %s later (%d writes failed meanwhile)",
		victim, old, now, rto.Round(100*time.Millisecond), failed)
	// The old master comes back as a replica of the new one.
	if err := r.Stack().Start(ctx, victim); err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Sentinels() {
		if err := waitFor(ctx, r.sentinelReady(s, now), 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}
