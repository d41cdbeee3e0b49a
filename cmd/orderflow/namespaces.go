package main

import (
	"fmt"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/temporal"
	"github.com/orderflow/orderflow/workers"
	"github.com/orderflow/orderflow/workflows/order"
)

// namespaceSet is a worker process's pools on WORKER_NAMESPACES: one
// workers.WhenActive per namespace, each with a Temporal client of its own
// on that namespace (a client serves one namespace).
type namespaceSet struct {
	watchers []*workers.WhenActive
	clients  []client.Client
}

// namespaceWorkers builds the watchers of cfg.Namespaces; each builds the
// process's pools (standalone: as newWorker) on its namespace's client
// whenever the cluster becomes active for it (docs/regions.md).
func namespaceWorkers(cl *boot.Clients, cfg workerConfig, log *zap.Logger, standalone bool) (*namespaceSet, error) {
	set := &namespaceSet{}
	for _, ns := range cfg.Namespaces {
		// The process's own client serves its own namespace: a gateway's
		// eager starts need the worker on the client that starts them.
		c := cl.Temporal
		if c == nil || ns != cfg.Boot.Temporal.Namespace {
			tc := cfg.Boot.Temporal
			tc.Namespace = ns
			var err error
			if c, err = temporal.Dial(tc, temporal.Options{Log: log, Tracer: cl.Tracer, Keys: cl.PII, OrderIDOf: order.IDOf}); err != nil {
				set.close()
				return nil, fmt.Errorf("namespace %s: %w", ns, err)
			}
			set.clients = append(set.clients, c)
		}
		onNS := *cl
		onNS.Temporal = c
		set.watchers = append(set.watchers, &workers.WhenActive{Client: c, Namespace: ns, Every: cfg.NamespaceCheck, Log: log,
			Build: func() (workers.Runner, error) {
				pool, _, err := newWorker(&onNS, cfg, log, standalone)
				return pool, err
			}})
	}
	return set, nil
}

// Start starts every watcher.
func (s *namespaceSet) Start() error {
	for _, w := range s.watchers {
		if err := w.Start(); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops every watcher and its pools.
func (s *namespaceSet) Stop() {
	for _, w := range s.watchers {
		w.Stop()
	}
}

func (s *namespaceSet) close() {
	for _, c := range s.clients {
		c.Close()
	}
}
