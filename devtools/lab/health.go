package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"time"
)

// A Check is one readiness condition: nil once the node serves.
type Check interface {
	Check(ctx context.Context) error
	String() string
}

// HTTPGet passes when GET URL answers 200.
type HTTPGet struct {
	URL      string
	User     string // basic-auth user, when the endpoint wants one
	Password string
}

// Check implements Check.
func (h HTTPGet) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return err
	}
	if h.User != "" {
		req.SetBasicAuth(h.User, h.Password)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", h.URL, res.StatusCode)
	}
	return nil
}

func (h HTTPGet) String() string { return "GET " + h.URL }

// TCP passes when Addr accepts a connection.
type TCP struct{ Addr string }

// Check implements Check.
func (t TCP) Check(ctx context.Context) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func (t TCP) String() string { return "tcp " + t.Addr }

// RedisPing passes when the Redis at Addr answers PING with PONG.
type RedisPing struct{ Addr string }

// Check implements Check.
func (r RedisPing) Check(ctx context.Context) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", r.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("redis %s answered %q", r.Addr, strings.TrimSpace(line))
	}
	return nil
}

func (r RedisPing) String() string { return "redis PING " + r.Addr }

// Command passes when the command exits 0.
type Command struct{ Argv []string }

// Check implements Check.
func (c Command) Check(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", c.String(), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c Command) String() string { return strings.Join(c.Argv, " ") }

// All passes when every check passes.
type All []Check

// Check implements Check.
func (a All) Check(ctx context.Context) error {
	for _, c := range a {
		if err := c.Check(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (a All) String() string {
	s := make([]string, len(a))
	for i, c := range a {
		s[i] = c.String()
	}
	return strings.Join(s, " and ")
}

// ErrExited is returned by Wait when the process it waits for has ended.
var ErrExited = errors.New("the process exited")

// Wait polls c every 100 ms until it passes, for at most timeout. When the
// process r (if not nil) ends first, it fails at once.
func Wait(ctx context.Context, c Check, timeout time.Duration, r *Running) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		last = c.Check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		if r != nil {
			if done, err := r.Exited(); done {
				return fmt.Errorf("%w (%v) before %s passed: %v", ErrExited, err, c, last)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not pass within %s: %v", c, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
