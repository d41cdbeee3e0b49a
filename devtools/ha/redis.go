package ha

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow/devtools/lab"
)

// RedisHA is Redis with a master, one replica and three Sentinels, each
// instance running from its own copy of deploy/redis/redis.conf or
// sentinel.conf (Sentinel rewrites them as the topology changes). Clients
// reach it with cache.Connect given Sentinels() and MasterName.
//
// Ports, from PortBase: redis-1 (the first master) +0, redis-2 (its
// replica) +1, sentinel-1..3 +10..+12.
type RedisHA struct {
	Root       string
	Data       string
	Host       string // default 127.0.0.1
	PortBase   int
	MasterName string // default "orderflow", as deploy/redis/sentinel.conf
	// Hosts, when set, gives nodes (redis-1, redis-2, sentinel-1..3)
	// hosts of their own.
	Hosts map[string]lab.Host
	Out   io.Writer

	stack *lab.Stack
}

func (r *RedisHA) defaults() {
	if r.Host == "" {
		r.Host = "127.0.0.1"
	}
	if r.MasterName == "" {
		r.MasterName = "orderflow"
	}
}

// at is the address of port on the host of the node called name.
func (r *RedisHA) at(name string, port int) string {
	return net.JoinHostPort(r.host(name), strconv.Itoa(port))
}

func (r *RedisHA) host(name string) string { return hostOf(r.Hosts, r.Host, name).Addr }

func redisName(i int) string    { return fmt.Sprintf("redis-%d", i+1) }
func sentinelName(i int) string { return fmt.Sprintf("sentinel-%d", i+1) }

// Sentinels are the Sentinels' addresses (REDIS_SENTINELS).
func (r *RedisHA) Sentinels() []string {
	r.defaults()
	return []string{r.at(sentinelName(0), r.PortBase+10), r.at(sentinelName(1), r.PortBase+11), r.at(sentinelName(2), r.PortBase+12)}
}

// NodeOf names the Redis node listening on addr (redis-1, redis-2).
func (r *RedisHA) NodeOf(addr string) (string, error) {
	for i := range 2 {
		if addr == r.at(redisName(i), r.PortBase+i) {
			return redisName(i), nil
		}
	}
	return "", fmt.Errorf("redis: no node at %s", addr)
}

// Stack is the two Redis instances and three Sentinels as lab nodes; the
// last Sentinel's After waits until every Sentinel knows the master, its
// replica and the other two Sentinels, so a failover can happen.
func (r *RedisHA) Stack() *lab.Stack {
	if r.stack != nil {
		return r.stack
	}
	r.defaults()
	var nodes []*lab.Node
	master := r.at(redisName(0), r.PortBase)
	for i := range 2 {
		name, port := redisName(i), r.PortBase+i
		conf := filepath.Join(r.Data, name, "redis.conf")
		extra := fmt.Sprintf("port %d\nbind %s\ndir %s\n", port, r.host(name), filepath.Dir(conf))
		if i > 0 {
			extra += fmt.Sprintf("replicaof %s %d\n", r.host(redisName(0)), r.PortBase)
		}
		nodes = append(nodes, place(&lab.Node{
			Name: name, Ports: lab.Ports{"redis": port},
			Proc:   lab.Process{Command: []string{"redis-server", conf}, Log: filepath.Join(r.Data, name+".log")},
			Ready:  lab.RedisPing{Addr: r.at(name, port)},
			Before: writeWithHeader(conf, filepath.Join(r.Root, "deploy", "redis", "redis.conf"), extra),
		}, hostOf(r.Hosts, r.Host, name)))
	}
	for i, addr := range r.Sentinels() {
		name, port := sentinelName(i), r.PortBase+10+i
		conf := filepath.Join(r.Data, name, "sentinel.conf")
		extra := fmt.Sprintf("port %d\nbind %s\ndir %s\nsentinel monitor %s %s %d 2\n", port, r.host(name), filepath.Dir(conf),
			r.MasterName, r.host(redisName(0)), r.PortBase)
		nodes = append(nodes, place(&lab.Node{
			Name: name, Ports: lab.Ports{"sentinel": port},
			Proc:   lab.Process{Command: []string{"redis-sentinel", conf}, Log: filepath.Join(r.Data, name+".log")},
			Ready:  lab.RedisPing{Addr: addr},
			Before: writeWithHeader(conf, filepath.Join(r.Root, "deploy", "redis", "sentinel.conf"), extra),
		}, hostOf(r.Hosts, r.Host, name)))
	}
	last := nodes[len(nodes)-1]
	last.After = func(ctx context.Context) error {
		for _, s := range r.Sentinels() {
			if err := waitFor(ctx, r.sentinelReady(s, master), 30*time.Second); err != nil {
				return err
			}
		}
		return nil
	}
	r.stack = lab.NewStack(lab.Config{Profile: "redis-ha", Root: r.Root, Data: r.Data}, nodes)
	r.stack.Out = r.Out
	return r.stack
}

// sentinelReady passes when the Sentinel at addr names master as the
// master, sees its replica up and replicating, and knows the two other
// Sentinels.
func (r *RedisHA) sentinelReady(addr, master string) lab.Check {
	return checkFunc{"sentinel " + addr + " knows the topology", func(ctx context.Context) error {
		s := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer s.Close()
		got, err := s.GetMasterAddrByName(ctx, r.MasterName).Result()
		if err != nil {
			return err
		}
		if net.JoinHostPort(got[0], got[1]) != master {
			return fmt.Errorf("master is %v, want %s", got, master)
		}
		// One replica, up and in sync with the master (a dead one stays
		// listed, flagged s_down).
		replicas, err := s.Replicas(ctx, r.MasterName).Result()
		if err != nil || len(replicas) != 1 || replicas[0]["flags"] != "slave" || replicas[0]["master-link-status"] != "ok" {
			return fmt.Errorf("replicas %v: %v", replicas, err)
		}
		others, err := s.Sentinels(ctx, r.MasterName).Result()
		if err != nil || len(others) != 2 {
			return fmt.Errorf("other sentinels %d: %v", len(others), err)
		}
		return nil
	}}
}

// Master asks the Sentinels for the master's address.
func (r *RedisHA) Master(ctx context.Context) (string, error) {
	var last error
	for _, addr := range r.Sentinels() {
		s := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
		got, err := s.GetMasterAddrByName(ctx, r.MasterName).Result()
		_ = s.Close()
		if err == nil {
			return net.JoinHostPort(got[0], got[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel answered: %w", last)
}

// Up starts every node and waits until the Sentinels can fail over.
func (r *RedisHA) Up(ctx context.Context) error { return r.Stack().Up(ctx) }

// Down stops every node started.
func (r *RedisHA) Down() error { return r.Stack().Down() }
