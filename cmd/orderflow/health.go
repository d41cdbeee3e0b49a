package main

import (
	"context"
	"errors"
	"sync/atomic"

	"go.temporal.io/sdk/worker"

	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/health"
)

// checkWorker is the name of the worker's own check in its health report.
const checkWorker = "worker"

// runningWorker is a worker that knows whether it is started, for its health
// check.
type runningWorker struct {
	worker.Worker
	running atomic.Bool
}

// Start starts the worker and records it running when that succeeded.
func (w *runningWorker) Start() error {
	err := w.Worker.Start()
	w.running.Store(err == nil)
	return err
}

// Stop records the worker stopped, then stops it.
func (w *runningWorker) Stop() {
	w.running.Store(false)
	w.Worker.Stop()
}

// workerHealth is what a worker's GET /health runs: PostgreSQL, Redis
// (non-critical), Temporal, disk, memory, and the worker polling.
func workerHealth(cl *clients, h config.Health, w *runningWorker) *health.Checker {
	return health.New(h.Budget,
		health.Database(cl.db), health.Cache(cl.cache), health.Temporal(cl.temporal),
		health.Disk(h.DiskPath, h.MinFreeDiskMB), health.Memory(h.MaxHeapMB),
		health.Check{Name: checkWorker, Critical: true, Fn: func(context.Context) (string, error) {
			if !w.running.Load() {
				return "", errors.New("the worker is not running")
			}
			return "polling", nil
		}},
	)
}
