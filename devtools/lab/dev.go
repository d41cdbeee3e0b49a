package lab

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A Profile is a kind of single-node stack, as data: where it keeps its
// files, how its ports are picked, which database it uses and what its
// processes are told on top of the defaults.
type Profile struct {
	Name string
	Data string // its files, under the checkout
	// Ports is the port mode unless LAB_PORTS says otherwise: "default"
	// (the documented ports, `make run`) or "free".
	Ports string
	// Fresh stacks start with no files and an empty database.
	Fresh bool
	// Database, for a profile other than dev, is the suffix of its
	// database's name (orderflow_smoke); dev uses DATABASE_URL.
	Database string
	// PrivatePostgres runs a PostgreSQL cluster of the stack's own, so
	// that restarting it (chaos) touches no server others use.
	PrivatePostgres bool
	// Env is set for every process; Defaults only where the lab's own
	// environment does not set the variable.
	Env      map[string]string
	Defaults map[string]string
	// Slot spaces the profiles' ports under one LAB_PORTS=base:N: the
	// profile's ports start at N+10*Slot, so the smoke test and the chaos
	// run can run side by side.
	Slot int
	// Topology names a topology other than the single-node one (Config.Topology);
	// TemporalBackend, when set, is the only backend the profile runs.
	Topology        string
	TemporalBackend string
	// Network is the default network of a topology with hosts (LAB_NETWORK
	// overrides it); nil: DefaultNetwork, the ha profile's.
	Network *Network
}

// noLimits: one client address sends everything; limits far above it, the
// limiter and its Redis fallback still in the path.
var noLimits = map[string]string{"RATE_LIMIT_PER_IP": "100000000", "RATE_LIMIT_PER_USER": "100000000"}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// Profiles are the stacks orderflow runs: make run/up (dev), the smoke test,
// the chaos run and the bench.
var Profiles = map[string]Profile{
	// make run is development: a subscriber on this machine (orderflow-dev
	// webhooks listen, the README walk-through) may receive webhooks.
	"dev": {Name: "dev", Data: ".data", Ports: "default", Defaults: map[string]string{"WEBHOOKS_ALLOW_PRIVATE": "true"}},
	// The stack as make run starts it; the short bench it runs sends
	// orders and polls from one address.
	"smoke": {Name: "smoke", Data: ".data/smoke", Ports: "free", Fresh: true, Database: "smoke", Slot: 1,
		Env: merge(noLimits, map[string]string{"API_EMBED_WORKER": "true"})},
	"chaos": {Name: "chaos", Data: ".data/chaos", Ports: "free", Fresh: true, Database: "chaos", PrivatePostgres: true, Slot: 2,
		Env: merge(noLimits, map[string]string{
			// Every saga runs on the worker process, so killing it
			// interrupts sagas mid-step; the gateway only starts them.
			"API_EMBED_WORKER": "false",
			// Parked orders retry every 1-5 s and a breaker tries again
			// after 5 s, so the run settles within its quiescence bound
			// after the last fault.
			"PAYMENT_RETRY_INITIAL": "1s", "PAYMENT_RETRY_MAX": "5s", "PAYMENT_BREAKER_OPEN_TIMEOUT": "5s",
			// The run's webhook subscribers listen on loopback; a
			// delivery they fail is retried within seconds and a held one
			// given up after 2 s, so every event arrives within the
			// run's bounds after their last fault window.
			"WEBHOOKS_ALLOW_PRIVATE": "true", "WEBHOOKS_RETRY_INITIAL": "1s", "WEBHOOKS_RETRY_MAX": "4s", "WEBHOOKS_TIMEOUT": "2s",
			// The payment simulators send their signed webhooks (3-D
			// Secure steps, disputes) to the gateway, which verifies
			// them with these (Services); an order waiting on its 3-D
			// Secure step fails after 30 s, so the run's late steps come
			// after the deadline.
			"PAYMENT_WEBHOOK_SECRETS": "paysim-a=" + chaosWebhookSecret + "-a,paysim-b=" + chaosWebhookSecret + "-b",
			"PAYMENT_DEADLINE":        "30s",
		}),
		Defaults: map[string]string{"LOG_LEVEL": "warn"}},
	// The bench measures the stack, not the limiter; the gateway starts
	// sagas eagerly as make run does. Its orders end CONFIRMED, as the
	// results in docs/performance.md were measured.
	// The production topology inside a region (docs/ha.md): every node a
	// host (network namespace) of its own, HAProxy in the lab's namespace
	// on make run's ports. Built by devtools/ha.
	"ha": {Name: "ha", Data: ".data/ha-profile", Ports: "default", Fresh: true, Slot: 4, Topology: "ha", TemporalBackend: "cluster"},
	// Two regions, east and west, each with its hosts (network namespaces):
	// PostgreSQL, a standby of the other region's, Redis, a Temporal
	// cluster replicating to the other's, a gateway and a worker; HAProxy
	// in the lab's namespace on the api port routes each customer to their
	// home region (docs/regions.md). Built by devtools/regions.
	"regions": {Name: "regions", Data: ".data/regions", Ports: "default", Fresh: true, Slot: 5, Topology: "regions", TemporalBackend: "cluster",
		Network: &Network{Bridge: "ofr-br0", Subnet: "10.204.0.0/16", Gateway: "10.204.0.1", Prefix: "ofr-"}},
	"bench": {Name: "bench", Data: ".data/bench", Ports: "free", Fresh: true, Database: "bench", Slot: 3,
		Defaults: merge(noLimits, map[string]string{"LOG_LEVEL": "warn", "API_EMBED_WORKER": "true", "FULFILLMENT_ENABLED": "false",
			// Nor do they mail or relay events: the bench measures taking orders.
			"SMTP_URL": "", "NATS_URL": ""})},
}

// PortNames are the single-node stack's ports, in the order base:N gives
// them out.
var PortNames = []string{"api", "worker", "paysim-a", "paysim-b", "temporal", "temporal-ui", "redis", "postgres", "carrier",
	"mailpit-smtp", "mailpit-ui", "nats", "nats-monitor"}

// slotPorts is how many ports each profile's slot spans under base:N.
const slotPorts = 16

// DefaultPorts are make run's ports (README).
var DefaultPorts = Ports{"api": 8080, "worker": 8081, "paysim-a": 8090, "paysim-b": 8093,
	"temporal": 7233, "temporal-ui": 8233, "redis": 6379, "postgres": 5432, "carrier": 8096,
	"mailpit-smtp": 1025, "mailpit-ui": 8025, "nats": 4222, "nats-monitor": 8222}

// ClusterPorts are the defaults of the ports TEMPORAL_BACKEND=cluster and
// topologies add: the Temporal balancer's status page and the first of the
// servers' 20 ports (on loopback; the ha profile's servers have hosts of
// their own); the gateways' balancer's status page.
var ClusterPorts = Ports{"temporal-lb-stats": 8404, "temporal-cluster": 7300, "api-lb-stats": 8405}

// TemporalBackends are what TEMPORAL_BACKEND may name.
var TemporalBackends = []string{"dev", "cluster"}

const defaultDatabaseURL = "postgres://orderflow:orderflow@127.0.0.1:5432/orderflow?sslmode=disable"

// Options say which single-node stack to build.
type Options struct {
	Profile string // a key of Profiles; default "dev"
	Root    string // the checkout
	// Data overrides the profile's directory (dev: STACK_DATA_DIR too).
	Data string
	// Ports overrides the port mode ("default", "free", "base:N"; LAB_PORTS too).
	Ports string
	// Getenv reads the lab's environment (os.Getenv when nil).
	Getenv func(string) string
	// TemporalBackend is "dev" or "cluster" (TEMPORAL_BACKEND too; default
	// the profile's, else dev).
	TemporalBackend string
	// Network overrides the network of a topology with hosts (the ha
	// profile's test runs beside a stack that is up).
	Network *Network
}

// Dev is a single-node stack: the topology of make run, or of one of the
// other profiles, with the environment its processes get.
type Dev struct {
	*Stack
	Profile Profile
}

// NewDev resolves the options (ports, database, secrets, environment
// overrides) and builds the stack. It creates the stack's secrets under its
// data directory the first time.
func NewDev(o Options) (*Dev, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if o.Profile == "" {
		o.Profile = "dev"
	}
	prof, ok := Profiles[o.Profile]
	if !ok {
		return nil, fmt.Errorf("lab: no profile %q (dev, smoke, chaos, bench, ha, regions)", o.Profile)
	}
	dev := prof.Name == "dev"
	env := func(k string) string {
		if dev {
			return getenv(k)
		}
		return ""
	}
	data := o.Data
	if data == "" && dev {
		data = getenv("STACK_DATA_DIR")
	}
	if data == "" {
		data = filepath.Join(o.Root, prof.Data)
	}
	data, _ = filepath.Abs(data)
	mode, err := ParsePortMode(firstOf(o.Ports, getenv("LAB_PORTS"), prof.Ports))
	if err != nil {
		return nil, err
	}
	backend := firstOf(o.TemporalBackend, getenv("TEMPORAL_BACKEND"), prof.TemporalBackend, "dev")
	if !slices.Contains(TemporalBackends, backend) {
		return nil, fmt.Errorf("lab: TEMPORAL_BACKEND=%q: want dev or cluster", backend)
	}
	if prof.TemporalBackend != "" && backend != prof.TemporalBackend {
		return nil, fmt.Errorf("lab: the %s profile runs Temporal as a %s, not %s", prof.Name, prof.TemporalBackend, backend)
	}
	names := PortNames
	if backend == "cluster" {
		names = append(names[:len(names):len(names)], "temporal-lb-stats")
	}
	if prof.Topology != "" {
		names = append(names, "api-lb-stats")
	}
	// The lab's own address: loopback, or with hosts of their own the
	// bridge's, which they reach.
	var network *Network
	root := Loopback
	if prof.Topology != "" {
		nw := DefaultNetwork
		if prof.Network != nil {
			nw = *prof.Network
		}
		switch v := getenv("LAB_NETWORK"); {
		case o.Network != nil:
			nw = *o.Network
		case v != "":
			if nw, err = ParseNetwork(v); err != nil {
				return nil, err
			}
		}
		network, root = &nw, nw.Gateway
	}
	if mode.Kind == "base" {
		mode.Base += slotPorts * prof.Slot
	}

	// Ports named by the environment (make run's overrides) win.
	over := Ports{}
	dbURL := env("DATABASE_URL")
	if !dev {
		dbURL = profileDatabaseURL(prof, getenv)
	}
	if dbURL == "" {
		dbURL = defaultDatabaseURL
	}
	if !prof.PrivatePostgres {
		over["postgres"] = portOf(dbURL, 5432)
	}
	if v := env("REDIS_URL"); v != "" {
		over["redis"] = portOf(v, 6379)
	}
	if v := env("TEMPORAL_PORT"); v != "" {
		over["temporal"], _ = strconv.Atoi(v)
	} else if v := env("TEMPORAL_ADDRESS"); v != "" {
		over["temporal"] = portOf("grpc://"+v, 7233)
	}
	for name, key := range map[string]string{"temporal-ui": "TEMPORAL_UI_PORT", "paysim-a": "PAYSIM_A_PORT", "paysim-b": "PAYSIM_B_PORT",
		"carrier": "CARRIER_PORT", "mailpit-smtp": "MAILPIT_SMTP_PORT", "mailpit-ui": "MAILPIT_UI_PORT", "nats": "NATS_PORT", "nats-monitor": "NATS_MONITOR_PORT"} {
		if v := env(key); v != "" {
			p, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("lab: %s=%q is not a port", key, v)
			}
			over[name] = p
		}
	}
	if v := env("API_ADDR"); v != "" {
		over["api"] = portOf("http://"+v, 8080)
	}
	if v := env("WORKER_HEALTH_ADDR"); v != "" {
		over["worker"] = portOf("http://"+v, 8081)
	}
	defaults := Ports{}
	for _, m := range []Ports{DefaultPorts, ClusterPorts} {
		for k, v := range m {
			defaults[k] = v
		}
	}
	ports, err := Allocate(names, defaults, mode, over)
	if err != nil {
		return nil, err
	}
	if backend == "cluster" && prof.Topology == "" {
		// Always 7300: Temporal keeps membership ports in a smallint, so
		// no kernel-given port (32768 and up) will do; the servers of a
		// stack not on make run's ports bind an address of their own
		// instead (ClusterHost).
		ports["temporal-cluster"] = ClusterPorts["temporal-cluster"]
	}
	if prof.PrivatePostgres {
		u, _ := url.Parse(dbURL)
		u.Host = net.JoinHostPort(Loopback, strconv.Itoa(ports["postgres"]))
		dbURL = u.String()
	}

	e := map[string]string{}
	set := func(k, def string) string {
		v := env(k)
		if v == "" {
			v = def
		}
		e[k] = v
		return v
	}
	lo := func(name string) string { return net.JoinHostPort(root, strconv.Itoa(ports[name])) }
	e["DATABASE_URL"] = dbURL
	set("REDIS_URL", "redis://"+lo("redis")+"/0")
	set("TEMPORAL_ADDRESS", lo("temporal"))
	apiAddr := lo("api")
	if mode.Kind == "default" {
		apiAddr = ":" + strconv.Itoa(ports["api"]) // every interface, as make run always did
	}
	set("API_ADDR", apiAddr)
	set("WORKER_HEALTH_ADDR", lo("worker"))
	// Payloads in Temporal are sealed (internal/pii); the Web UI decodes
	// them through the gateway's codec server, for an operator signed in.
	set("TEMPORAL_UI_CODEC_ENDPOINT", "http://"+lo("api")+"/codec")
	ui := strconv.Itoa(ports["temporal-ui"])
	set("CODEC_CORS_ORIGINS", "http://127.0.0.1:"+ui+",http://localhost:"+ui)
	// The gateway runs an order worker too, so it can start sagas eagerly
	// (docs/performance.md); the separate worker takes what it does not.
	set("API_EMBED_WORKER", "true")
	// The embedded worker and the worker charge through these, in
	// failover order.
	set("PAYMENT_PROVIDERS", "paysim-a=paysim:http://"+lo("paysim-a")+",paysim-b=paysim:http://"+lo("paysim-b"))
	set("TEMPORAL_GOGC", "400")
	// Orders go on to the customer's door: the gateway's sagas fulfil
	// them, the worker and the gateway's embedded worker hand shipments
	// to the simulated carrier, which posts its signed events back
	// (docs/fulfillment.md).
	set("FULFILLMENT_ENABLED", "true")
	set("CARRIER_URL", "http://"+lo("carrier"))
	// The worker mails customers through mailpit, which keeps every
	// message for its web UI, and relays the event outbox to NATS
	// JetStream (docs/events.md).
	set("SMTP_URL", "smtp://"+lo("mailpit-smtp")+"?tls=none")
	set("NATS_URL", "nats://"+lo("nats"))
	for k, v := range prof.Env {
		e[k] = v
	}
	for k, v := range prof.Defaults {
		if getenv(k) == "" {
			e[k] = v
		}
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	// Development tokens are HS256 with this secret, made once per data
	// dir; the code has no default secret.
	if getenv("AUTH_HS256_SECRET") == "" && getenv("AUTH_JWKS_URL") == "" {
		s, err := secretFile(filepath.Join(data, "auth-hs256.secret"), func(s string) string { return s })
		if err != nil {
			return nil, err
		}
		e["AUTH_HS256_SECRET"] = s
	}
	// Stored e-mails are encrypted with this key, made once per data dir;
	// to rotate, append a line with a new kid (the last line is active).
	if getenv("PII_KEYS") == "" && getenv("PII_KEYS_FILE") == "" {
		f := filepath.Join(data, "pii.keys")
		if _, err := secretFile(f, func(s string) string { return "dev-" + time.Now().UTC().Format("20060102") + ":" + s }); err != nil {
			return nil, err
		}
		e["PII_KEYS_FILE"] = f
	}
	// The carrier signs its events with this secret, the gateway checks
	// them with it; made once per data dir like the auth secret.
	if getenv("CARRIER_WEBHOOK_SECRET") == "" {
		s, err := secretFile(filepath.Join(data, "carrier-webhook.secret"), func(s string) string { return "whsec-" + s })
		if err != nil {
			return nil, err
		}
		e["CARRIER_WEBHOOK_SECRET"] = s
	}
	bin := firstOf(getenv("ORDERFLOW_BIN"), filepath.Join(o.Root, "bin", "orderflow"))
	devBin := firstOf(getenv("ORDERFLOW_DEV_BIN"), filepath.Join(o.Root, "bin", "orderflow-dev"))
	e["ORDERFLOW_BIN"], e["ORDERFLOW_DEV_BIN"] = bin, devBin
	if prof.PrivatePostgres {
		e["LAB_POSTGRES"] = "private"
	}
	cfg := Config{Profile: prof.Name, Root: o.Root, Data: data, Ports: ports, Env: e, Network: network,
		TemporalBackend: backend, Topology: prof.Topology}
	return BuildDev(cfg)
}

// LoadDev rebuilds the single-node stack whose state is under data, as it
// was started: same ports, same environment.
func LoadDev(data string) (*Dev, error) {
	data, _ = filepath.Abs(data)
	st, err := LoadState(data)
	if err != nil {
		return nil, err
	}
	return BuildDev(st.Config)
}

// Builders of what the lab cannot build itself: devtools/ha's engines
// (it imports the lab, so the lab cannot import it). devtools/ha registers
// them when it is imported; a program that brings such a stack up, or
// loads one, imports devtools/ha.
var (
	buildersMu       sync.Mutex
	topologies       = map[string]func(Config) (*Dev, error){}
	temporalBackends = map[string]func(Config) ([]*Node, error){}
)

// RegisterTopology makes Config.Topology name build the stack.
func RegisterTopology(name string, build func(Config) (*Dev, error)) {
	buildersMu.Lock()
	defer buildersMu.Unlock()
	topologies[name] = build
}

// RegisterTemporalBackend makes TEMPORAL_BACKEND=name put nodes in the
// single-node stack in place of the dev server; they answer gRPC at
// Loopback:Ports["temporal"] and serve the Web UI at Ports["temporal-ui"].
func RegisterTemporalBackend(name string, nodes func(Config) ([]*Node, error)) {
	buildersMu.Lock()
	defer buildersMu.Unlock()
	temporalBackends[name] = nodes
}

func builder[F any](m map[string]F, kind, name string) (F, error) {
	buildersMu.Lock()
	defer buildersMu.Unlock()
	f, ok := m[name]
	if !ok {
		return f, fmt.Errorf("lab: no %s %q: it is built by devtools/ha or devtools/regions, which this program does not import", kind, name)
	}
	return f, nil
}

// NewDevStack is a stack of nodes of cfg's profile (a registered topology's).
func NewDevStack(cfg Config, nodes []*Node) *Dev {
	return &Dev{Stack: NewStack(cfg, nodes), Profile: Profiles[cfg.Profile]}
}

// BuildDev builds the topology from a resolved configuration: a registered
// topology's, or the single node's: postgres, redis, temporal (or the
// cluster's nodes), migrate, seed, paysim-a, paysim-b, carrier, mailpit,
// nats, worker, api.
func BuildDev(cfg Config) (*Dev, error) {
	if cfg.Topology != "" {
		build, err := builder(topologies, "topology", cfg.Topology)
		if err != nil {
			return nil, err
		}
		return build(cfg)
	}
	e := cfg.Env
	run := filepath.Join(cfg.Data, "run")
	pg, err := Postgres{URL: e["DATABASE_URL"], Private: e["LAB_POSTGRES"] == "private",
		Dir: filepath.Join(cfg.Data, "postgres"), Log: filepath.Join(run, "postgres.log")}.Node()
	if err != nil {
		return nil, err
	}
	rd, err := Redis{URL: e["REDIS_URL"], Dir: filepath.Join(run, "redis"), Log: filepath.Join(run, "redis.log")}.Node()
	if err != nil {
		return nil, err
	}
	nodes := []*Node{pg, rd}
	if cfg.TemporalBackend == "cluster" {
		cluster, err := builder(temporalBackends, "Temporal backend", cfg.TemporalBackend)
		if err != nil {
			return nil, err
		}
		tn, err := cluster(cfg)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, tn...)
	} else {
		cli, err := TemporalCLI(cfg.Root)
		if err != nil {
			return nil, err
		}
		tp, err := TemporalDev{Port: cfg.Ports["temporal"], UIPort: cfg.Ports["temporal-ui"], DBFile: filepath.Join(cfg.Data, "temporal.db"),
			CodecEndpoint: e["TEMPORAL_UI_CODEC_ENDPOINT"], GOGC: e["TEMPORAL_GOGC"], CLI: cli, Root: cfg.Root,
			Log: filepath.Join(run, "temporal.log")}.Node()
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, tp)
	}
	svc, err := Services(cfg)
	if err != nil {
		return nil, err
	}
	nodes = append(nodes, svc...)
	bin := e["ORDERFLOW_BIN"]
	worker := &Node{Name: "worker", Ports: Ports{"health": cfg.Ports["worker"]}, Proc: App(cfg, "worker", bin, "worker")}
	worker.Ready = TCP{Addr: worker.Addr("health")}
	api := &Node{Name: "api", Ports: Ports{"http": cfg.Ports["api"]}, Proc: App(cfg, "api", bin, "api")}
	api.Ready = HTTPGet{URL: "http://" + api.Addr("http") + "/health/ready"}
	nodes = append(nodes, worker, api)
	return NewDevStack(cfg, nodes), nil
}

// chaosWebhookSecret signs the chaos stack's provider webhooks (a test
// secret, as the stack's development token secret is).
const chaosWebhookSecret = "whsec_chaos_paysim"

// providerWebhookSecret is provider's entry in a PAYMENT_WEBHOOK_SECRETS
// list (provider=secret,...), "" when it has none.
func providerWebhookSecret(list, provider string) string {
	for _, entry := range strings.Split(list, ",") {
		if name, secret, ok := strings.Cut(strings.TrimSpace(entry), "="); ok && name == provider {
			return secret
		}
	}
	return ""
}

// App is a process of the stack: argv with the stack's environment, its
// output in logs/<name>.log.
func App(cfg Config, name string, argv ...string) Process {
	environ := make([]string, 0, len(cfg.Env))
	for _, k := range sortedKeys(cfg.Env) {
		environ = append(environ, k+"="+cfg.Env[k])
	}
	return Process{Command: argv, Env: environ, Dir: cfg.Root, Log: filepath.Join(cfg.Data, "logs", name+".log")}
}

// Services are the nodes every topology runs once beside its data stores,
// Temporal and orderflow's own processes: the migrate and seed jobs, the
// payment simulators, the carrier, mailpit and NATS. With a Network they
// run in the lab's namespace at its bridge address and bind every
// interface, so the hosts behind the bridge and the lab's loopback (the
// banner's addresses, the README's curl) both reach them.
func Services(cfg Config) ([]*Node, error) {
	e := cfg.Env
	host, root := "", Loopback
	if cfg.Network != nil {
		host, root = cfg.Network.Gateway, cfg.Network.Gateway
	}
	bind := func(n *Node, port string) string {
		if cfg.Network != nil {
			return net.JoinHostPort("0.0.0.0", strconv.Itoa(n.Ports[port]))
		}
		return n.Addr(port)
	}
	bin, devBin := e["ORDERFLOW_BIN"], e["ORDERFLOW_DEV_BIN"]
	nodes := []*Node{
		{Name: "migrate", Job: true, Proc: App(cfg, "migrate", bin, "migrate")},
		{Name: "seed", Job: true, Proc: App(cfg, "seed", devBin, "seed")},
	}
	for _, name := range []string{"paysim-a", "paysim-b"} {
		n := &Node{Name: name, Host: host, Ports: Ports{"http": cfg.Ports[name]}}
		n.Proc = App(cfg, name, devBin, "paysim")
		n.Proc.Env = append(n.Proc.Env, "PAYSIM_NAME="+name, "PAYSIM_ADDR="+bind(n, "http"))
		if secret := providerWebhookSecret(e["PAYMENT_WEBHOOK_SECRETS"], name); secret != "" {
			n.Proc.Env = append(n.Proc.Env, "PAYSIM_WEBHOOK_SECRET="+secret,
				"PAYSIM_WEBHOOK_URL=http://"+net.JoinHostPort(root, strconv.Itoa(cfg.Ports["api"]))+"/v1/webhooks/payments/"+name)
		}
		n.Ready = HTTPGet{URL: "http://" + n.Addr("http") + "/health"}
		nodes = append(nodes, n)
	}
	// The carrier posts to the gateway, re-sending each event until it
	// answers, so it may start before the gateway is up.
	carrier := &Node{Name: "carrier", Host: host, Ports: Ports{"http": cfg.Ports["carrier"]}}
	carrier.Proc = App(cfg, "carrier", devBin, "carrier", "--addr", bind(carrier, "http"),
		"--gateway", "http://"+net.JoinHostPort(root, strconv.Itoa(cfg.Ports["api"])))
	carrier.Ready = HTTPGet{URL: "http://" + carrier.Addr("http") + "/health"}
	nodes = append(nodes, carrier)
	mailpitBin, err := GoTool(cfg.Root, "mailpit")
	if err != nil {
		return nil, err
	}
	mailpit := &Node{Name: "mailpit", Host: host, Ports: Ports{"smtp": cfg.Ports["mailpit-smtp"], "http": cfg.Ports["mailpit-ui"]}}
	mailpit.Proc = App(cfg, "mailpit", append([]string{mailpitBin},
		MailpitArgs(bind(mailpit, "smtp"), bind(mailpit, "http"), filepath.Join(cfg.Data, "mailpit.db"))...)...)
	mailpit.Ready = HTTPGet{URL: "http://" + mailpit.Addr("http") + "/readyz"}
	natsBin, err := GoTool(cfg.Root, "nats-server")
	if err != nil {
		return nil, err
	}
	nats := &Node{Name: "nats", Host: host, Ports: Ports{"client": cfg.Ports["nats"], "monitor": cfg.Ports["nats-monitor"]}}
	natsConf := filepath.Join(cfg.Data, "nats.conf")
	nats.Proc = App(cfg, "nats", natsBin, "-c", natsConf)
	nats.Before = func(context.Context) error {
		return WriteNATSConfig(natsConf, bind(nats, "client"), bind(nats, "monitor"), filepath.Join(cfg.Data, "nats"))
	}
	nats.Ready = HTTPGet{URL: NATSHealthURL(nats.Addr("monitor"))}
	return append(nodes, mailpit, nats), nil
}

// ClusterHost is the loopback address the servers of TEMPORAL_BACKEND=cluster
// bind: 127.0.0.1 on make run's ports, else one made of the stack's
// temporal port (127.<port/256>.<port%256>.1), unique as that port is, so
// stacks side by side share no server port.
func ClusterHost(ports Ports) string {
	p := ports["temporal"]
	if p == DefaultPorts["temporal"] {
		return Loopback
	}
	return fmt.Sprintf("127.%d.%d.1", p>>8&255, p&255)
}

// Environ is the stack's environment as KEY=VALUE lines, for a command run
// against it (`orderflow-dev lab with`), with STACK_DATA_DIR naming it.
func (d *Dev) Environ() []string {
	out := []string{"STACK_DATA_DIR=" + d.Config.Data}
	for _, k := range sortedKeys(d.Config.Env) {
		out = append(out, k+"="+d.Config.Env[k])
	}
	return out
}

// APIURL is the gateway's base URL.
func (d *Dev) APIURL() string {
	return "http://" + net.JoinHostPort(Loopback, strconv.Itoa(d.Config.Ports["api"]))
}

// Wipe stops the stack under data, if one runs there, and removes its files.
func Wipe(data string) error {
	if d, err := LoadDev(data); err == nil {
		d.Out = io.Discard
		if err := d.Down(); err != nil {
			return err
		}
	}
	return os.RemoveAll(data)
}

// Build builds bin/orderflow and bin/orderflow-dev from the checkout, unless
// ORDERFLOW_BIN and ORDERFLOW_DEV_BIN name binaries built elsewhere.
func (d *Dev) Build() error {
	if os.Getenv("ORDERFLOW_BIN") != "" && os.Getenv("ORDERFLOW_DEV_BIN") != "" {
		return nil
	}
	for pkg, out := range map[string]string{"./cmd/orderflow": d.Config.Env["ORDERFLOW_BIN"],
		"./devtools/cmd/orderflow-dev": d.Config.Env["ORDERFLOW_DEV_BIN"]} {
		if err := goBuild(d.Config.Root, nil, out, pkg); err != nil {
			return err
		}
	}
	return nil
}

// UpFresh brings the stack up; a fresh profile's database is emptied first
// (its files were removed by Wipe before NewDev).
func (d *Dev) UpFresh(ctx context.Context) error {
	if d.Profile.Fresh && d.Config.Env["LAB_POSTGRES"] != "private" && d.Config.Topology == "" {
		n, err := d.Node("postgres")
		if err != nil {
			return err
		}
		if err := d.up(ctx, n); err != nil {
			return err
		}
		pg := Postgres{URL: d.Config.Env["DATABASE_URL"]}
		if err := pg.RecreateDatabase(ctx); err != nil {
			return err
		}
	}
	if err := d.Up(ctx); err != nil {
		return err
	}
	return d.writeTokens(ctx)
}

// writeTokens mints a customer's and an operator's token for the
// walk-through (README) into <data>/tokens.env, for scripts to source.
func (d *Dev) writeTokens(ctx context.Context) error {
	if d.Config.Env["AUTH_HS256_SECRET"] == "" && os.Getenv("AUTH_HS256_SECRET") == "" {
		return nil
	}
	var b strings.Builder
	for _, t := range [][2]string{{"CUSTOMER_TOKEN", "c-demo:customer"}, {"OPERATOR_TOKEN", "ops-demo:operator"}} {
		sub, role, _ := strings.Cut(t[1], ":")
		cmd := exec.CommandContext(ctx, d.Config.Env["ORDERFLOW_BIN"], "token", "--sub", sub, "--role", role, "--ttl", "12h")
		cmd.Env = append(os.Environ(), "AUTH_HS256_SECRET="+firstOf(d.Config.Env["AUTH_HS256_SECRET"], os.Getenv("AUTH_HS256_SECRET")))
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("lab: mint %s: %w", t[0], err)
		}
		fmt.Fprintf(&b, "export %s=%s\n", t[0], strings.TrimSpace(string(out)))
	}
	if err := os.WriteFile(d.TokensFile(), []byte(b.String()), 0o600); err != nil {
		return err
	}
	// A topology on make run's ports stands in for make run: the README's
	// walk-through sources make run's tokens file (make up rewrites it).
	if d.Config.Topology != "" && d.Config.Ports["api"] == DefaultPorts["api"] {
		return os.WriteFile(filepath.Join(d.Config.Root, Profiles["dev"].Data, "tokens.env"), []byte(b.String()), 0o600)
	}
	return nil
}

// TokensFile is where the stack's development tokens are written.
func (d *Dev) TokensFile() string { return filepath.Join(d.Config.Data, "tokens.env") }

// Banner writes what make run prints once the stack is up: where each part
// answers, the tokens, the logs.
func (d *Dev) Banner(w io.Writer) {
	e, p := d.Config.Env, d.Config.Ports
	api := d.APIURL()
	tokens := "                   (AUTH_JWKS_URL is set: tokens come from your identity provider)\n"
	if b, err := os.ReadFile(d.TokensFile()); err == nil && e["AUTH_HS256_SECRET"] != "" {
		tokens = ""
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			tokens += "                   " + l + "\n"
		}
	}
	secretRef := "<the stack's secret>"
	if f := filepath.Join(d.Config.Data, "auth-hs256.secret"); fileHas(f) {
		secretRef = "$(cat " + f + ")"
	}
	logs, run := filepath.Join(d.Config.Data, "logs"), filepath.Join(d.Config.Data, "run")
	fmt.Fprintf(w, `
  orderflow is up
    gateway        %[1]s   (try: curl -H "Authorization: Bearer $CUSTOMER_TOKEN" %[1]s/v1/products)
    tokens         customer c-demo and operator ops-demo, valid 12 h (or: source %[2]s); more with
                   AUTH_HS256_SECRET=%[3]s bin/orderflow token --sub <id> --role <role>
%[4]s    Temporal UI    http://127.0.0.1:%[5]d/namespaces/default/workflows
                   (payloads are encrypted: to read them, sign in with the operator token at
                   %[6]s/session, then in the UI's Codec Server settings
                   use your browser's setting with that endpoint and include cross-origin credentials)
    Temporal gRPC  %[7]s
    payments       paysim-a http://127.0.0.1:%[8]d, paysim-b http://127.0.0.1:%[9]d
                   (faults: curl -X PUT http://127.0.0.1:%[8]d/admin/faults -d '{"outage":true}')
    carrier        http://127.0.0.1:%[15]d (simulated: picks each shipment up, ships and delivers it,
                   2 s a step; its delays: PUT /admin/schedule, docs/fulfillment.md)
    mail           http://127.0.0.1:%[16]d (mailpit: every message the worker sends; SMTP %[17]s)
    events         %[18]s (NATS JetStream: order.*, payment.*, inventory.*; docs/events.md)
    PostgreSQL     %[10]s
    Redis          %[11]s
    logs           %[12]s/ (%[20]s), %[13]s/temporal.log
    state          %[14]s (orderflow-dev lab status)
%[19]s
`, api, d.TokensFile(), secretRef, tokens, p["temporal-ui"], e["TEMPORAL_UI_CODEC_ENDPOINT"], e["TEMPORAL_ADDRESS"],
		p["paysim-a"], p["paysim-b"], strings.SplitN(e["DATABASE_URL"], "?", 2)[0], e["REDIS_URL"], logs, run, StatePath(d.Config.Data), p["carrier"],
		p["mailpit-ui"], strings.TrimPrefix(strings.SplitN(e["SMTP_URL"], "?", 2)[0], "smtp://"), e["NATS_URL"], d.topologyLines(), d.logNames())
}

// logNames are the nodes whose logs are in logs/: make run's, or every
// node's of a topology (lab status names each log).
func (d *Dev) logNames() string {
	if d.Config.Topology != "" || d.Config.TemporalBackend == "cluster" {
		return "each node's: orderflow-dev lab status"
	}
	return "api, worker, paysim-a, paysim-b, carrier, mailpit, nats"
}

// topologyLines are the banner's lines on what is not make run's: the
// Temporal cluster, the hosts of the ha profile.
func (d *Dev) topologyLines() string {
	var b strings.Builder
	if d.Config.Topology == "regions" {
		fmt.Fprintf(&b, "    topology       regions: east and west, each region's hosts (network namespaces) on %s; the gateway\n"+
			"                   above routes by X-Orderflow-Region; a Temporal cluster per region (orders-east, orders-west;\n"+
			"                   no Web UI: the CLI against REGION_<R>_TEMPORAL_ADDRESS, lab env);\n"+
			"                   hosts and addresses: orderflow-dev lab status --profile regions (docs/regions.md)\n\n", d.Config.Network.Subnet)
		return b.String()
	}
	if d.Config.TemporalBackend == "cluster" {
		b.WriteString("    Temporal       a cluster of two servers on PostgreSQL behind HAProxy (TEMPORAL_BACKEND=cluster; docs/ha.md)\n")
	}
	if d.Config.Topology != "" {
		fmt.Fprintf(&b, "    topology       %s: each node a host (network namespace) on %s, balancers on the ports above;\n"+
			"                   hosts and addresses: orderflow-dev lab status --profile %s (docs/ha.md)\n",
			d.Config.Topology, d.Config.Network.Subnet, d.Config.Profile)
	}
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

func fileHas(path string) bool { fi, err := os.Stat(path); return err == nil && fi.Size() > 0 }

// secretFile returns the secret kept in path, writing a new one (32 random
// bytes, base64, shaped by line) with mode 0600 the first time.
func secretFile(path string, line func(string) string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	s := line(base64.StdEncoding.EncodeToString(raw))
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	return s, nil
}

// profileDatabaseURL is a non-dev profile's database: LAB_DATABASE_URL (or
// BENCH_DATABASE_URL for the bench, as is), else make run's, with the
// profile's name appended to the database name (orderflow_smoke).
func profileDatabaseURL(p Profile, getenv func(string) string) string {
	if p.Name == "bench" && getenv("BENCH_DATABASE_URL") != "" {
		return getenv("BENCH_DATABASE_URL")
	}
	u, err := url.Parse(firstOf(getenv("LAB_DATABASE_URL"), defaultDatabaseURL))
	if err != nil {
		return defaultDatabaseURL
	}
	u.Path = "/" + strings.TrimPrefix(u.Path, "/") + "_" + p.Database
	return u.String()
}

func portOf(raw string, def int) int {
	u, err := url.Parse(raw)
	if err != nil || u.Port() == "" {
		return def
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		return def
	}
	return p
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
