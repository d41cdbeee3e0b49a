// Package temporal is orderflow's Temporal plumbing: one place that dials a
// cluster's client with the project's data converter (payloads sealed by the
// PII keyring's codec), interceptors, context propagators, metrics, logger
// and TLS, so that the gateway, the workers, the operator tools and the dev
// tools all talk to a cluster the same way. A second cluster is a second
// Config.
package temporal

import (
	"fmt"

	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/logging"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/internal/telemetry"
	"github.com/orderflow/orderflow/internal/tlsconf"
)

// Config names one Temporal cluster and namespace and how to reach it.
type Config struct {
	Address   string
	Namespace string
	TLS       tlsconf.ClientConfig
}

// Options are what a client carries besides its Config.
type Options struct {
	// Log receives the SDK's own logs; nil discards them.
	Log *zap.Logger
	// Tracer, when set, joins workflows and activities to the caller's trace.
	Tracer trace.TracerProvider
	// Keys seal every payload and failure message before it reaches the
	// server (pii.Codec); a client that starts or runs sagas must have them.
	// A nil keyring leaves payloads as they are (visibility-only clients).
	Keys *pii.Keyring
	// OrderIDOf tells the tracing interceptors which order a workflow id
	// belongs to; nil leaves the order id off the spans.
	OrderIDOf func(workflowID string) (string, bool)
}

// Dial connects to the cluster. It fails when the frontend cannot be
// reached or the TLS settings cannot be loaded.
func Dial(c Config, o Options) (client.Client, error) {
	log := o.Log
	if log == nil {
		log = zap.NewNop()
	}
	idOf := o.OrderIDOf
	if idOf == nil {
		idOf = func(string) (string, bool) { return "", false }
	}
	interceptors, propagators, err := telemetry.Temporal(o.Tracer, idOf)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := tlsconf.Client(c.TLS)
	if err != nil {
		return nil, err
	}
	opts := client.Options{
		HostPort: c.Address, Namespace: c.Namespace, Logger: logging.Temporal(log),
		Interceptors: interceptors, ContextPropagators: propagators,
		MetricsHandler: telemetry.TemporalMetrics(),
		// No gzip: the SDK compresses every request by default, but the
		// payloads that make up most of a request are sealed, and ciphertext
		// does not compress (docs/performance.md, decision 16).
		ConnectionOptions: client.ConnectionOptions{TLS: tlsCfg, GrpcCompression: &client.GrpcCompressionNone{}},
	}
	if o.Keys != nil {
		opts.DataConverter, opts.FailureConverter = pii.Converters(o.Keys)
	}
	tc, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("dial temporal %s: %w", c.Address, err)
	}
	return tc, nil
}
