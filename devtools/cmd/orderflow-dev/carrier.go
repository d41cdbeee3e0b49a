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
// posts events signed with CARRIER_WEBHOOK_SECRET back to the gateway on
// its schedule. Each flag may also be set by CARRIER_<FLAG> (CARRIER_ADDR,
// CARRIER_GATEWAY, CARRIER_PICKUP_AFTER, ...); flags override the
// environment.
func runCarrier(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("carrier", flag.ContinueOnError)
	addr := fs.String("addr", ":8095", "listen address")
	gateway := fs.String("gateway", "http://127.0.0.1:8080", "the gateway events go to")
	var sched carrier.Schedule
	var pickup, transit, deliver time.Duration
	fs.DurationVar(&pickup, "pickup-after", 2*time.Second, "handover to picked_up")
	fs.DurationVar(&transit, "transit-after", 2*time.Second, "picked_up to in_transit")
	fs.DurationVar(&deliver, "deliver-after", 2*time.Second, "in_transit to delivered or lost")
	fs.Float64Var(&sched.LostRate, "lost-rate", 0, "fraction of parcels lost")
	if err := flagsFromEnv(fs, "CARRIER_"); err != nil {
		return fmt.Errorf("carrier: %w", err)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("carrier: %w", err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("carrier: unexpected arguments %q", fs.Args())
	}
	secret := envOr("CARRIER_WEBHOOK_SECRET", "")
	if secret == "" {
		return errors.New("carrier: CARRIER_WEBHOOK_SECRET is required: the gateway refuses unsigned events")
	}
	sched.PickupAfter, sched.TransitAfter, sched.DeliverAfter = carrier.Duration(pickup), carrier.Duration(transit), carrier.Duration(deliver)
	v := product()
	common := boot.Config{LogFormat: config.LogFormat.Get(v), LogLevel: config.LogLevel.Get(v)}
	if err := v.Err(); err != nil {
		return err
	}
	log, err := boot.Logger(common, "carrier")
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	log.Info("starting simulated carrier", zap.String("addr", *addr), zap.String("gateway", *gateway),
		zap.Duration("pickup_after", pickup), zap.Float64("lost_rate", sched.LostRate))
	srv := carrier.New(*gateway, []byte(secret), sched, log)
	hs := &http.Server{Addr: *addr, Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	hs.RegisterOnShutdown(srv.Close)
	return boot.Serve(ctx, hs, log, "simulated carrier")
}
