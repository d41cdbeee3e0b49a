package breaker

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/redis/go-redis/v9"
)

// RedisFailure reports whether err says Redis failed a call: unreachable,
// the connection dropped or no answer in time. A miss (redis.Nil) and an
// error Redis answered with (NOSCRIPT, WRONGTYPE...) are answers.
func RedisFailure(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var answer redis.Error
	if errors.As(err, &answer) && !isNetwork(err) {
		return false
	}
	return true
}

func isNetwork(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}

// NewRedis is the breaker of a Redis server, counting RedisFailure errors.
func NewRedis(name string, s Settings) *Breaker {
	return New(name, s, Options{Failure: RedisFailure})
}

// RedisHook is a go-redis hook that sends every command and pipeline of the
// client it is added to through b (but PING and a connection's handshake). While b is open a command fails at once
// with an error wrapping ErrOpen, which the callers' fallbacks (a cache miss,
// the rate limiter's in-process buckets) already handle as Redis being down.
func RedisHook(b *Breaker) redis.Hook { return redisHook{b} }

type redisHook struct{ b *Breaker }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if bypass(cmd) {
			return next(ctx, cmd)
		}
		err := h.b.Do(func() error { return next(ctx, cmd) })
		if errors.Is(err, ErrOpen) {
			err = fmt.Errorf("redis %s: %w", cmd.Name(), err)
			cmd.SetErr(err)
		}
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if all(cmds, bypass) {
			return next(ctx, cmds)
		}
		err := h.b.Do(func() error { return next(ctx, cmds) })
		if errors.Is(err, ErrOpen) {
			err = fmt.Errorf("redis pipeline: %w", err)
			for _, c := range cmds {
				c.SetErr(err)
			}
		}
		return err
	}
}

// bypass tells the commands that go past the breaker without moving it:
// PING, which is how health checks see Redis itself, and the handshake
// a new connection sends (HELLO, AUTH, SELECT, CLIENT SETINFO), which must
// not fail a half-open probe's connection before the probe is sent.
func bypass(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "ping", "hello", "auth", "select", "client":
		return true
	}
	return false
}

func all(cmds []redis.Cmder, f func(redis.Cmder) bool) bool {
	for _, c := range cmds {
		if !f(c) {
			return false
		}
	}
	return len(cmds) > 0
}
