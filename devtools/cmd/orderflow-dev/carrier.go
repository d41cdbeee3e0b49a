package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/orderflow/orderflow/devtools/carrier"
	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/config"
)

// runCarrier serves the simulated carrier until ctx ends (SIGTERM,
// Ctrl-C): workers hand it shipments (CARRIER_URL pointing here) and it
// posts signed events back to the gateway on its schedule. Flags override
// the environment.
func runCarrier(ctx context.Context, args []string) error {
	cfg := config.LoadCarrier()
	fs := flag.NewFlagSet("carrier", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (CARRIER_ADDR)")
	fs.StringVar(&cfg.GatewayURL, "gateway", cfg.GatewayURL, "the gateway events go to (CARRIER_GATEWAY_URL)")
	fs.DurationVar(&cfg.PickupAfter, "pickup-after", cfg.PickupAfter, "handover to picked_up (CARRIER_PICKUP_AFTER)")
	fs.DurationVar(&cfg.TransitAfter, "transit-after", cfg.TransitAfter, "picked_up to in_transit (CARRIER_TRANSIT_AFTER)")
	fs.DurationVar(&cfg.DeliverAfter, "deliver-after", cfg.DeliverAfter, "in_transit to delivered or lost (CARRIER_DELIVER_AFTER)")
	fs.Float64Var(&cfg.LostRate, "lost-rate", cfg.LostRate, "fraction of parcels lost (CARRIER_LOST_RATE)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("carrier: %w", err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("carrier: unexpected arguments %q", fs.Args())
	}
	if cfg.WebhookSecret == "" {
		return errors.New("carrier: CARRIER_WEBHOOK_SECRET is required: the gateway refuses unsigned events")
	}
	log, err := boot.Logger(cfg.Common, "carrier")
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	log.Info("starting simulated carrier", zap.String("addr", cfg.Addr), zap.String("gateway", cfg.GatewayURL),
		zap.Duration("pickup_after", cfg.PickupAfter), zap.Float64("lost_rate", cfg.LostRate))
	srv := carrier.New(cfg.GatewayURL, []byte(cfg.WebhookSecret), carrier.Schedule{
		PickupAfter: carrier.Duration(cfg.PickupAfter), TransitAfter: carrier.Duration(cfg.TransitAfter),
		DeliverAfter: carrier.Duration(cfg.DeliverAfter), LostRate: cfg.LostRate,
	}, log)
	hs := &http.Server{Addr: cfg.Addr, Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	hs.RegisterOnShutdown(srv.Close)
	return boot.Serve(ctx, hs, log, "simulated carrier")
}
