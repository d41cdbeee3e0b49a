package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow/devtools/lab"
)

// patroniMember is a member as Patroni's GET /cluster lists it.
type patroniMember struct {
	Name  string `json:"name"`
	Role  string `json:"role"`  // leader, sync_standby, replica (standby_leader in a standby cluster)
	State string `json:"state"` // running, streaming, starting, stopped...
}

// patroniCluster asks each member's REST API in turn for GET /cluster and
// returns the first answer: a member cut off or killed does not answer, the
// others do.
func patroniCluster(ctx context.Context, rest []string) ([]patroniMember, error) {
	var last error
	for _, base := range rest {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		members, err := getCluster(base)
		if err == nil {
			return members, nil
		}
		last = err
	}
	return nil, fmt.Errorf("no Patroni REST API answered: %w", last)
}

// patroniHTTP bounds each question to a member: one cut off never answers.
var patroniHTTP = &http.Client{Timeout: 2 * time.Second}

func getCluster(base string) ([]patroniMember, error) {
	res, err := patroniHTTP.Get(base + "/cluster")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var c struct {
		Members []patroniMember `json:"members"`
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/cluster: status %d", base, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&c); err != nil {
		return nil, fmt.Errorf("GET %s/cluster: %w", base, err)
	}
	return c.Members, nil
}

// PatroniLeader returns a Tier.Target: the member Patroni's REST API (any
// member's, rest) names the leader, the primary.
func PatroniLeader(rest []string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		members, err := patroniCluster(ctx, rest)
		if err != nil {
			return "", err
		}
		return leaderOf(members)
	}
}

func leaderOf(members []patroniMember) (string, error) {
	for _, m := range members {
		if m.Role == "leader" && m.State == "running" {
			return m.Name, nil
		}
	}
	return "", fmt.Errorf("no running leader among %v", members)
}

// PatroniWhole returns a check that passes when Patroni (any member's REST
// API, rest) lists a running leader and a synchronous standby that streams
// from it: a failover can happen again without losing a commit.
func PatroniWhole(rest []string) lab.Check { return patroniWhole(rest) }

type patroniWhole []string

func (p patroniWhole) Check(ctx context.Context) error {
	members, err := patroniCluster(ctx, p)
	if err != nil {
		return err
	}
	return wholeCluster(members)
}

func (p patroniWhole) String() string { return "a Patroni leader and its synchronous standby" }

func wholeCluster(members []patroniMember) error {
	if _, err := leaderOf(members); err != nil {
		return err
	}
	for _, m := range members {
		if m.Role == "sync_standby" && (m.State == "streaming" || m.State == "running") {
			return nil
		}
	}
	return fmt.Errorf("no synchronous standby among %v", members)
}

// SentinelMaster returns a Tier.Target: the node whose Redis the Sentinels
// (the first that answers) name the master of name; nodeOf names the node
// of a Redis address (host:port).
func SentinelMaster(sentinels []string, name string, nodeOf func(addr string) (string, error)) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		addr, _, err := sentinelView(ctx, sentinels, name)
		if err != nil {
			return "", err
		}
		return nodeOf(addr)
	}
}

// sentinelView asks the Sentinels in turn, until one answers, for the
// master's address and its replicas.
func sentinelView(ctx context.Context, sentinels []string, name string) (string, []map[string]string, error) {
	var last error
	for _, addr := range sentinels {
		s := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
		got, err := s.GetMasterAddrByName(ctx, name).Result()
		var replicas []map[string]string
		if err == nil {
			replicas, err = s.Replicas(ctx, name).Result()
		}
		_ = s.Close()
		if err == nil && len(got) == 2 {
			return net.JoinHostPort(got[0], got[1]), replicas, nil
		}
		last = err
	}
	return "", nil, fmt.Errorf("no Sentinel answered for %s: %w", name, last)
}

// SentinelWhole returns a check that passes when every Sentinel names the
// same master of name and sees a replica of it up and in sync: a failover
// can happen again.
func SentinelWhole(sentinels []string, name string) lab.Check {
	return sentinelWhole{sentinels: sentinels, name: name}
}

type sentinelWhole struct {
	sentinels []string
	name      string
}

func (s sentinelWhole) Check(ctx context.Context) error {
	master := ""
	for _, addr := range s.sentinels {
		got, replicas, err := sentinelView(ctx, []string{addr}, s.name)
		if err != nil {
			return err
		}
		if master != "" && got != master {
			return fmt.Errorf("sentinels disagree: %s and %s", master, got)
		}
		master = got
		if !replicaInSync(replicas) {
			return fmt.Errorf("sentinel %s: no replica of %s in sync: %v", addr, got, replicas)
		}
	}
	return nil
}

func (s sentinelWhole) String() string {
	return "every Sentinel agrees on the master, which has its replica in sync"
}

func replicaInSync(replicas []map[string]string) bool {
	for _, r := range replicas {
		if r["flags"] == "slave" && r["master-link-status"] == "ok" {
			return true
		}
	}
	return false
}
