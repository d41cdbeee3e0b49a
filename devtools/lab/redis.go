package lab

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Redis describes a Redis node: the server behind URL when it answers, else
// redis-server started on the URL's port with its files under Dir, without
// persistence (Redis holds nothing that cannot be rebuilt).
type Redis struct {
	Name string // default "redis"
	URL  string
	Dir  string
	Log  string
}

// Node returns Redis as a node.
func (r Redis) Node() (*Node, error) {
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, fmt.Errorf("redis: REDIS_URL: %w", err)
	}
	port := 6379
	if u.Port() != "" {
		port, _ = strconv.Atoi(u.Port())
	}
	name := r.Name
	if name == "" {
		name = "redis"
	}
	n := &Node{Name: name, Host: u.Hostname(), Ports: Ports{"redis": port}}
	n.Proc = Process{Command: []string{"redis-server", "--bind", n.HostAddr(), "--port", strconv.Itoa(port),
		"--dir", r.Dir, "--save", "", "--appendonly", "no", "--daemonize", "no"}, Log: r.Log,
		// SIGTERM makes Redis try to save; it has nothing to save.
		StopSignal: syscall.SIGTERM}
	n.Reuse = RedisPing{Addr: n.Addr("redis")}
	n.Ready = RedisPing{Addr: n.Addr("redis")}
	n.ReadyTimeout = 15 * time.Second
	n.Before = func(context.Context) error { return os.MkdirAll(r.Dir, 0o755) }
	return n, nil
}
