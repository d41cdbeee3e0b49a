package cache_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/cache"
)

// clusterNode starts redis-server in cluster mode, alone and owning all
// 16384 slots: it answers every key itself, and still refuses a multi-key
// command whose keys lie in different slots (CROSSSLOT), as any Redis
// Cluster does.
func clusterNode(t *testing.T) *redis.Client {
	t.Helper()
	testkit.Require(t, testkit.EnvRedis) // make test installs redis-server
	dir := t.TempDir()
	port := testkit.FreePort(t)
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	rc, err := cache.Open(fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	ctx := context.Background()
	var last error
	for range 100 {
		if last = rc.Ping(ctx).Err(); last == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("cluster node on %d: %v", port, last)
	}
	if err := rc.ClusterAddSlotsRange(ctx, 0, cache.Slots-1).Err(); err != nil {
		t.Fatalf("cluster addslotsrange: %v", err)
	}
	for range 100 {
		info, err := rc.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return rc
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the cluster node never reported cluster_state:ok")
	return nil
}

var sampleKeys = []string{
	cache.ProductKey("SKU-1"), cache.ProductKey("SKU-2"), cache.ProductKey("SKU-300"),
	cache.InventoryKey("SKU-1"), cache.InventoryKey("SKU-2"), cache.OrderKey("0b4f7c2e-9a51-4c8e-b3a9-1f0d2e3c4b5a"),
	"session:ab12", "{order:42}:a", "{order:42}:b", "{}x", "a{}{b}", "foo", "",
}

func TestSlotIsTheSlotRedisClusterComputes(t *testing.T) {
	rc := clusterNode(t)
	for _, k := range sampleKeys {
		want, err := rc.ClusterKeySlot(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := cache.Slot(k); int64(got) != want {
			t.Errorf("Slot(%q) = %d, Redis says %d", k, got, want)
		}
	}
}

func TestMultiKeyCallsWorkAgainstRedisCluster(t *testing.T) {
	rc := clusterNode(t)
	ctx := context.Background()
	keys := []string{cache.ProductKey("SKU-1"), cache.ProductKey("SKU-2"), cache.InventoryKey("SKU-1"), cache.ProductKey("SKU-3")}
	if len(cache.BySlot(keys)) < 2 {
		t.Fatal("the sample keys share a slot: the test would prove nothing")
	}
	// The bug this guards against: one MGET over several slots.
	if err := rc.MGet(ctx, keys...).Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("MGET over several slots = %v, want CROSSSLOT (is this a cluster node?)", err)
	}
	for i, k := range keys[:3] {
		cache.SetJSON(ctx, rc, nil, k, map[string]int{"n": i}, time.Minute)
	}
	got := map[int]string{}
	cache.GetManyJSON(ctx, rc, nil, keys, func(i int, raw []byte) error { got[i] = string(raw); return nil })
	want := map[int]string{0: `{"n":0}`, 1: `{"n":1}`, 2: `{"n":2}`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("GetManyJSON = %v, want %v (the fourth key is absent)", got, want)
	}
	cache.Del(ctx, rc, nil, keys...)
	for _, k := range keys {
		if n := rc.Exists(ctx, k).Val(); n != 0 {
			t.Errorf("%s still exists after Del", k)
		}
	}
}

func TestConnectWantsSentinelsAndMasterNameTogether(t *testing.T) {
	for _, cfg := range []cache.Config{
		{URL: "redis://127.0.0.1:6379/0", Sentinels: []string{"127.0.0.1:26379"}},
		{URL: "redis://127.0.0.1:6379/0", MasterName: "orderflow"},
	} {
		if _, err := cache.Connect(cfg); err == nil || !strings.Contains(err.Error(), "REDIS_SENTINELS") {
			t.Errorf("Connect(%+v) = %v, want an error naming the settings", cfg, err)
		}
	}
}
