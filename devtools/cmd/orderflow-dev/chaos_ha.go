package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/orderflow/orderflow/devtools/chaos"
	"github.com/orderflow/orderflow/devtools/ha"
	"github.com/orderflow/orderflow/devtools/lab"
)

// haOptions are the flags of `orderflow-dev chaos --ha`.
type haOptions struct {
	rounds    int
	kinds     string
	modes     string
	quiet     time.Duration
	maxOutage time.Duration
}

// runChaosHA drives the ha profile running under data (`orderflow-dev lab
// with --profile ha`): hosts lost one at a time (chaos.HARunner), the
// invariants, the recovery per fault kind; it fails when an invariant does
// not hold.
func runChaosHA(ctx context.Context, data string, c chaos.Config, o haOptions) error {
	p, err := ha.LoadProfile(data)
	if err != nil {
		return fmt.Errorf("chaos --ha: the stack under %s: %w", data, err)
	}
	if c.APIURL == "" {
		c.APIURL = p.APIURL()
	}
	tokens, pool, tc, err := stackClients(ctx, p.Environ())
	if err != nil {
		return err
	}
	defer pool.Close()
	defer tc.Close()
	c.Tokens = tokens
	tiers, err := chaos.SelectTiers(haTiers(p), o.kinds)
	if err != nil {
		return fmt.Errorf("chaos --ha --kinds: %w", err)
	}
	hc := chaos.HAConfig{Hosts: profileHosts{p}, Tiers: tiers, Rounds: o.rounds, Quiet: o.quiet, MaxOutage: o.maxOutage}
	for _, m := range strings.Split(o.modes, ",") {
		if m = strings.TrimSpace(m); m != "" {
			hc.Modes = append(hc.Modes, m)
		}
	}
	rep, err := chaos.NewHA(c, hc, pool, tc, os.Stdout).Run(ctx)
	if err != nil {
		return fmt.Errorf("chaos --ha: %w", err)
	}
	return finish("chaos --ha", rep, rep.Passed, c.ResultsDir)
}

// haTiers are the hosts the run loses, with the design's recovery
// objectives (issue 13): the PostgreSQL primary (Patroni promotes the
// synchronous standby) 30 s, the Redis master (Sentinel promotes the
// replica) 15 s, one Temporal server (the other takes its shards) 10 s,
// one gateway 0 (the balancer routes around it), one worker 0 (the other
// polls the same queues; placements never wait on a worker).
func haTiers(p *ha.Profile) []chaos.Tier {
	rest := []string{p.Postgres.RESTURL(0), p.Postgres.RESTURL(1)}
	sentinels := p.Redis.Sentinels()
	ready := func(names ...string) lab.Check {
		var all lab.All
		for _, name := range names {
			if n, err := p.Node(name); err == nil && n.Ready != nil {
				all = append(all, n.Ready)
			}
		}
		return all
	}
	temporal := []string{ha.ServerName(0), ha.ServerName(1)}
	gateways := []string{ha.GatewayName(0), ha.GatewayName(1)}
	workers := []string{"worker-1", "worker-2"}
	return []chaos.Tier{
		{Kind: "pg_primary", Nodes: []string{ha.MemberName(0), ha.MemberName(1)}, Target: chaos.PatroniLeader(rest),
			Objective: 30 * time.Second, MinOutage: 10 * time.Second, Whole: chaos.PatroniWhole(rest)},
		{Kind: "redis_master", Nodes: []string{"redis-1", "redis-2"}, Target: chaos.SentinelMaster(sentinels, p.Redis.MasterName, p.Redis.NodeOf),
			Objective: 15 * time.Second, MinOutage: 10 * time.Second, Whole: chaos.SentinelWhole(sentinels, p.Redis.MasterName)},
		{Kind: "temporal_server", Nodes: temporal, Objective: 10 * time.Second, MinOutage: 10 * time.Second, Whole: ready(temporal...)},
		{Kind: "gateway", Nodes: gateways, MinOutage: 5 * time.Second, Whole: lab.All{ready(gateways...), p.Gateways.Serving(0, 1)}},
		{Kind: "worker", Nodes: workers, MinOutage: 10 * time.Second, Whole: ready(workers...)},
	}
}

// profileHosts are the ha profile's hosts as the chaos run breaks them:
// the lab kills every process of a host and cuts its link; a host healed
// is waited for until its node answers again.
type profileHosts struct{ p *ha.Profile }

func (h profileHosts) Kill(_ context.Context, node string) error { return h.p.Kill(node) }

func (h profileHosts) Start(ctx context.Context, node string) error { return h.p.Start(ctx, node) }

func (h profileHosts) Cut(ctx context.Context, node string) error { return h.p.Cut(ctx, node) }

func (h profileHosts) Heal(ctx context.Context, node string) error {
	if err := h.p.Heal(ctx, node); err != nil {
		return err
	}
	n, err := h.p.Node(node)
	if err != nil || n.Ready == nil {
		return err
	}
	return lab.Wait(ctx, n.Ready, 2*time.Minute, nil)
}
