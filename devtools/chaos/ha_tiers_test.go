package chaos

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/devtools/ha"
	"github.com/orderflow/orderflow/devtools/lab"
)

func TestPatroniLeaderIsTheRunningLeaderAndWholeWantsItsSyncStandby(t *testing.T) {
	_, err := leaderOf([]patroniMember{{Name: "pg1", Role: "leader", State: "stopped"}, {Name: "pg2", Role: "replica", State: "streaming"}})
	assert.Error(t, err, "a stopped leader is no primary")
	name, err := leaderOf([]patroniMember{{Name: "pg1", Role: "replica", State: "streaming"}, {Name: "pg2", Role: "leader", State: "running"}})
	require.NoError(t, err)
	assert.Equal(t, "pg2", name)
	assert.Error(t, wholeCluster([]patroniMember{{Name: "pg2", Role: "leader", State: "running"}, {Name: "pg1", Role: "replica", State: "streaming"}}),
		"an asynchronous replica is not whole yet")
	assert.NoError(t, wholeCluster([]patroniMember{{Name: "pg2", Role: "leader", State: "running"}, {Name: "pg1", Role: "sync_standby", State: "streaming"}}))
}

// haParts skips unless ORDERFLOW_TEST_HA=1 and returns the checkout and
// the port base (ORDERFLOW_TEST_HA_PORT_BASE), as devtools/ha's tests.
func haParts(t *testing.T) (root string, base int) {
	t.Helper()
	if os.Getenv("ORDERFLOW_TEST_HA") != "1" {
		t.Skip("ORDERFLOW_TEST_HA=1 runs the HA tests (they start real clusters)")
	}
	base, err := strconv.Atoi(os.Getenv("ORDERFLOW_TEST_HA_PORT_BASE"))
	require.NoError(t, err, "ORDERFLOW_TEST_HA_PORT_BASE: a port base with 400 free ports above it")
	root, err = filepath.Abs("../..")
	require.NoError(t, err)
	return root, base
}

func TestSentinelMasterFollowsAFailoverAndWholeWaitsForTheOldMasterToReplicate(t *testing.T) {
	root, base := haParts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r := &ha.RedisHA{Root: root, Data: t.TempDir(), PortBase: base + 200}
	t.Cleanup(func() { assert.NoError(t, r.Down()) })
	require.NoError(t, r.Up(ctx))
	target := SentinelMaster(r.Sentinels(), "orderflow", r.NodeOf)
	whole := SentinelWhole(r.Sentinels(), "orderflow")
	first, err := target(ctx)
	require.NoError(t, err)
	assert.Equal(t, "redis-1", first)
	require.NoError(t, lab.Wait(ctx, whole, 30*time.Second, nil))

	require.NoError(t, r.Stack().Kill(first))
	require.Eventually(t, func() bool { m, err := target(ctx); return err == nil && m == "redis-2" }, time.Minute, 200*time.Millisecond,
		"the replica promoted")
	assert.Error(t, whole.Check(ctx), "a master without its replica is not whole")
	require.NoError(t, r.Stack().Start(ctx, first))
	require.NoError(t, lab.Wait(ctx, whole, time.Minute, nil), "the old master back as the new one's replica")
}

func TestPatroniLeaderFollowsAFailoverAndWholeWaitsForTheOldPrimaryToStream(t *testing.T) {
	root, base := haParts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	data := t.TempDir()
	// Patroni runs as postgres, which must reach its directories.
	for d := data; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	p := &ha.PostgresHA{Root: root, Data: data, PortBase: base + 300}
	t.Cleanup(func() { assert.NoError(t, p.Down()) })
	require.NoError(t, p.Up(ctx))
	rest := []string{p.RESTURL(0), p.RESTURL(1)}
	target, whole := PatroniLeader(rest), PatroniWhole(rest)
	primary, err := p.Primary(ctx)
	require.NoError(t, err)
	leader, err := target(ctx)
	require.NoError(t, err)
	assert.Equal(t, ha.MemberName(primary), leader)
	require.NoError(t, lab.Wait(ctx, whole, time.Minute, nil))

	require.NoError(t, p.KillMember(primary))
	require.Eventually(t, func() bool { m, err := target(ctx); return err == nil && m == ha.MemberName(1-primary) }, time.Minute,
		200*time.Millisecond, "the standby promoted")
	assert.Error(t, whole.Check(ctx), "a primary without its standby is not whole")
	require.NoError(t, p.Stack().Start(ctx, ha.MemberName(primary)))
	require.NoError(t, lab.Wait(ctx, whole, 2*time.Minute, nil), "the old primary back as the synchronous standby")
}

func TestSelectTiersKeepsTheNamedKindsInOrderAndRefusesUnknownOnes(t *testing.T) {
	tiers := []Tier{{Kind: "pg_primary"}, {Kind: "redis_master"}, {Kind: "temporal_server"}}
	all, err := SelectTiers(tiers, "")
	require.NoError(t, err)
	assert.Len(t, all, 3, "no kinds: every tier")
	some, err := SelectTiers(tiers, "temporal_server, pg_primary")
	require.NoError(t, err)
	require.Len(t, some, 2)
	assert.Equal(t, "pg_primary", some[0].Kind, "the tiers' own order")
	assert.Equal(t, "temporal_server", some[1].Kind)
	_, err = SelectTiers(tiers, "temporal_server,pg_primry")
	assert.ErrorContains(t, err, `"pg_primry"`)
}
