package ha

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/devtools/lab"
)

// Gateways is two orderflow gateways (`orderflow api`) behind HAProxy
// (deploy/haproxy/gateway.cfg): customers use URL; each gateway keeps
// /metrics and /codec on its operator listener; a gateway stopped drains
// (API_DRAIN_DELAY) and the balancer routes around one lost.
//
// Ports, from PortBase: gateway-1 +0 and gateway-2 +1 (customers),
// their operator listeners +10 and +11, the balancer +20 and its status
// page +21.
type Gateways struct {
	Root     string
	Data     string
	Host     string // default 127.0.0.1
	PortBase int
	Binary   string   // the orderflow binary
	Env      []string // what the gateways need: DATABASE_URL, REDIS_URL, TEMPORAL_ADDRESS, AUTH_*, PII_*...
	// DrainDelay (default 2 s) covers the balancer's check: 2 failures
	// 500 ms apart.
	DrainDelay time.Duration
	// Hosts, when set, gives the gateways (gateway-1, gateway-2) hosts of
	// their own; Front, where the balancer and its status page listen
	// instead of the ports after the gateways'.
	Hosts map[string]lab.Host
	Front *Front
	// TrustedProxies is the balancer's address as the gateways see it
	// (default 127.0.0.1/32): they take the client's address from its
	// X-Forwarded-For.
	TrustedProxies string
	Out            io.Writer

	stack *lab.Stack
}

func (g *Gateways) defaults() {
	if g.Host == "" {
		g.Host = "127.0.0.1"
	}
	if g.DrainDelay == 0 {
		g.DrainDelay = 2 * time.Second
	}
	if g.TrustedProxies == "" {
		g.TrustedProxies = "127.0.0.1/32"
	}
}

// addr is gateway i's address at port PortBase+off.
func (g *Gateways) addr(i, off int) string {
	return net.JoinHostPort(hostOf(g.Hosts, g.Host, GatewayName(i)).Addr, strconv.Itoa(g.PortBase+off))
}

// front is the balancer's address (stats: its status page's), as dialled
// and as bound.
func (g *Gateways) front(stats bool) (dial, bind string) {
	if g.Front != nil {
		port := g.Front.Port
		if stats {
			port = g.Front.Stats
		}
		return net.JoinHostPort(g.Front.Host, strconv.Itoa(port)), g.Front.bind(port)
	}
	off := 20
	if stats {
		off = 21
	}
	a := net.JoinHostPort(g.Host, strconv.Itoa(g.PortBase+off))
	return a, a
}

// GatewayName is gateway i's node name: gateway-1, gateway-2.
func GatewayName(i int) string { return fmt.Sprintf("gateway-%d", i+1) }

// URL is the balancer's base URL, the customers' entry point.
func (g *Gateways) URL() string { g.defaults(); a, _ := g.front(false); return "http://" + a }

// OperatorURL is gateway i's operator listener.
func (g *Gateways) OperatorURL(i int) string { g.defaults(); return "http://" + g.addr(i, 10+i) }

// Stack is the two gateways and the balancer as lab nodes.
func (g *Gateways) Stack() *lab.Stack {
	if g.stack != nil {
		return g.stack
	}
	g.defaults()
	var nodes []*lab.Node
	for i := range 2 {
		name := GatewayName(i)
		// The part's addresses come last: they win over g.Env's.
		env := append(g.Env[:len(g.Env):len(g.Env)], "API_ADDR="+g.addr(i, i), "OPERATOR_ADDR="+g.addr(i, 10+i),
			"API_DRAIN_DELAY="+g.DrainDelay.String(), "TRUSTED_PROXIES="+g.TrustedProxies)
		nodes = append(nodes, place(&lab.Node{
			Name: name, Ports: lab.Ports{"api": g.PortBase + i, "operator": g.PortBase + 10 + i},
			Proc: lab.Process{Command: []string{g.Binary, "api"}, Env: env, Log: filepath.Join(g.Data, name+".log"),
				Grace: g.DrainDelay + 15*time.Second},
			Ready:        lab.HTTPGet{URL: "http://" + g.addr(i, i) + "/health/ready"},
			ReadyTimeout: time.Minute,
		}, hostOf(g.Hosts, g.Host, name)))
	}
	lb, lbBind := g.front(false)
	stats, statsBind := g.front(true)
	nodes = append(nodes, &lab.Node{
		Name: "gateway-lb", Host: hostOnly(lb), Ports: lab.Ports{"http": portOnly(lb), "stats": portOnly(stats)},
		Proc: lab.Process{
			Command: []string{"haproxy", "-db", "-f", filepath.Join(g.Root, "deploy", "haproxy", "gateway.cfg")},
			Env: []string{"GATEWAY_LB_ADDR=" + lbBind, "GATEWAY_LB_STATS_ADDR=" + statsBind,
				"GATEWAY_1=" + g.addr(0, 0), "GATEWAY_2=" + g.addr(1, 1)},
			Log: filepath.Join(g.Data, "gateway-lb.log"),
		},
		Ready: g.Serving(0, 1),
	})
	g.stack = lab.NewStack(lab.Config{Profile: "gateways", Root: g.Root, Data: g.Data}, nodes)
	g.stack.Out = g.Out
	return g.stack
}

// Serving passes when the balancer has exactly the gateways numbered
// (0-based) in rotation, as its status page says.
func (g *Gateways) Serving(gateways ...int) lab.Check {
	want := map[string]bool{}
	for _, i := range gateways {
		want[GatewayName(i)] = true
	}
	return checkFunc{fmt.Sprintf("the balancer routes to %v", gateways), func(ctx context.Context) error {
		up, err := g.inRotation(ctx)
		if err != nil {
			return err
		}
		for _, name := range []string{GatewayName(0), GatewayName(1)} {
			if up[name] != want[name] {
				return fmt.Errorf("%s in rotation: %t", name, up[name])
			}
		}
		return nil
	}}
}

func (g *Gateways) inRotation(ctx context.Context) (map[string]bool, error) {
	stats, _ := g.front(true)
	all, err := lab.HAProxyStatus(ctx, "http://"+stats+"/stats;csv")
	if err != nil {
		return nil, err
	}
	up := map[string]bool{}
	for name, status := range all["gateways"] {
		if strings.HasPrefix(name, "gateway-") {
			up[name] = status == "UP"
		}
	}
	return up, nil
}

// Up starts both gateways and the balancer.
func (g *Gateways) Up(ctx context.Context) error { return g.Stack().Up(ctx) }

// Down stops them (the gateways drain).
func (g *Gateways) Down() error { return g.Stack().Down() }

func hostOnly(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }

func portOnly(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
