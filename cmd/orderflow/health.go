package main

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/workers"
)

// checkWorker is the name of the worker's own check in its health report.
const checkWorker = "worker"

// runningWorker is a worker that knows whether it is started, for its health
// check.
type runningWorker struct {
	workers.Runner
	running atomic.Bool
}

// Start starts the worker and records it running when that succeeded.
func (w *runningWorker) Start() error {
	err := w.Runner.Start()
	w.running.Store(err == nil)
	return err
}

// Stop records the worker stopped, then stops it.
func (w *runningWorker) Stop() {
	w.running.Store(false)
	w.Runner.Stop()
}

// workerHealth is what a worker's GET /health runs: PostgreSQL, Redis
// (non-critical), Temporal, disk, memory, and the worker polling.
func workerHealth(cl *boot.Clients, h health.Config, w *runningWorker) *health.Checker {
	h = h.WithDefaults()
	c := health.New(h.Budget, health.Database(cl.DB), health.Cache(cl.Cache), health.Temporal(cl.Temporal))
	c.Add(h.Checks()...)
	c.Add(health.Check{Name: checkWorker, Critical: true, Fn: func(context.Context) (string, error) {
		if !w.running.Load() {
			return "", errors.New("the worker is not running")
		}
		return "polling", nil
	}})
	return c
}

// breakerChecks report each payment provider's circuit breaker. They are not
// critical: with every breaker open the saga parks orders in PAYMENT_PENDING
// and the process itself is healthy, so the report says "degraded" and
// names the open breakers.
func breakerChecks(r *payment.Router) []health.Check {
	var out []health.Check
	for _, g := range r.Providers() {
		out = append(out, health.Check{Name: "payment_breaker:" + g.Name(), Fn: func(context.Context) (string, error) {
			if !g.Available() {
				return g.State(), errors.New("circuit breaker open: charges go to the next provider or park")
			}
			return g.State(), nil
		}})
	}
	return out
}

// providerChecks tell GET /health/deep whether each paysim provider answers
// its health endpoint. None is critical on its own: charges fail over, and
// the deep check's synthetic order fails when no provider can take it.
func providerChecks(providers []config.Provider) []health.Check {
	var out []health.Check
	for _, p := range providers {
		if p.Kind == config.ProviderPaysim {
			out = append(out, health.Reachable("payment_provider:"+p.Name, strings.TrimRight(p.URL, "/")+"/health", false))
		}
	}
	return out
}
