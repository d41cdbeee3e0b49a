package main

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/activities/payment/paysim"
	"github.com/orderflow/orderflow/activities/payment/stripe"
	"github.com/orderflow/orderflow/internal/config"
)

// buildProviders returns a provider per entry of cfg.Providers
// (PAYMENT_PROVIDERS, which internal/config checked), in failover order: a
// paysim Client or the Stripe adapter, each bounded by cfg.Timeout. An empty
// list, an unknown kind, a paysim entry without a URL or two entries with
// one name are errors still, for a list built by other code: the name is
// what payments.provider records. A tp (tracing on) gives each provider
// call a client span.
func buildProviders(cfg paymentConfig, tp trace.TracerProvider) ([]payment.Provider, error) {
	if len(cfg.Providers) == 0 {
		return nil, errors.New("payment providers: PAYMENT_PROVIDERS lists none")
	}
	seen := map[string]bool{}
	out := make([]payment.Provider, 0, len(cfg.Providers))
	for _, p := range cfg.Providers {
		if seen[p.Name] {
			return nil, fmt.Errorf("payment providers: %q is listed twice", p.Name)
		}
		seen[p.Name] = true
		switch p.Kind {
		case config.ProviderPaysim:
			if p.URL == "" {
				return nil, fmt.Errorf("payment providers: %s: paysim needs a URL", p.Name)
			}
			out = append(out, paysim.NewTracedClient(p.Name, p.URL, cfg.Timeout, tp))
		case config.ProviderStripe:
			// An empty URL is Stripe's own API.
			sp, err := stripe.New(stripe.Config{Name: p.Name, APIKey: cfg.StripeKey, BaseURL: p.URL, Timeout: cfg.Timeout, TracerProvider: tp})
			if err != nil {
				return nil, fmt.Errorf("payment providers: %s: %w", p.Name, err)
			}
			out = append(out, sp)
		default:
			return nil, fmt.Errorf("payment providers: %s: unknown kind %q", p.Name, p.Kind)
		}
	}
	return out, nil
}
