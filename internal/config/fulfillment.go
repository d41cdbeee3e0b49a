package config

import (
	"fmt"
	"time"
)

// Fulfillment configures the order's life after CONFIRMED
// (docs/fulfillment.md): whether the sagas the gateway starts fulfil their
// orders (FULFILLMENT_ENABLED, default false: orders end CONFIRMED), the
// shipment SLA (SHIPMENT_SLA, 48h), the carrier the workers hand
// shipments to (CARRIER_URL; none: shipments wait for events all the
// same), the secret the carrier signs its events with
// (CARRIER_WEBHOOK_SECRET; without it the gateway refuses every event) and
// how far a signed event's time may be from the gateway's clock
// (CARRIER_EVENT_TOLERANCE, 5m), and how long after delivery goods may
// be returned (RETURN_WINDOW, 720h: 30 days).
type Fulfillment struct {
	Enabled        bool
	ShipmentSLA    time.Duration
	CarrierURL     string
	WebhookSecret  string
	EventTolerance time.Duration
	ReturnWindow   time.Duration
}

// LoadFulfillment reads the fulfillment settings.
func LoadFulfillment() Fulfillment {
	return Fulfillment{
		Enabled:        Env("FULFILLMENT_ENABLED", "false") == "true",
		ShipmentSLA:    EnvDuration("SHIPMENT_SLA", 48*time.Hour),
		CarrierURL:     Env("CARRIER_URL", ""),
		WebhookSecret:  Env("CARRIER_WEBHOOK_SECRET", ""),
		EventTolerance: EnvDuration("CARRIER_EVENT_TOLERANCE", 5*time.Minute),
		ReturnWindow:   EnvDuration("RETURN_WINDOW", 30*24*time.Hour),
	}
}

// Carrier configures the simulated carrier (`orderflow-dev carrier`):
// where it listens (CARRIER_ADDR, :8095), the gateway it posts its signed
// events to (CARRIER_GATEWAY_URL) with the shared secret
// (CARRIER_WEBHOOK_SECRET), how long after a handover each event follows
// the one before (CARRIER_PICKUP_AFTER, CARRIER_TRANSIT_AFTER,
// CARRIER_DELIVER_AFTER) and the fraction of parcels it loses
// (CARRIER_LOST_RATE).
type Carrier struct {
	Common
	Addr          string
	GatewayURL    string
	WebhookSecret string
	PickupAfter   time.Duration
	TransitAfter  time.Duration
	DeliverAfter  time.Duration
	LostRate      float64
}

// LoadCarrier reads the simulated carrier's settings.
func LoadCarrier() Carrier {
	return Carrier{
		Common:        LoadCommon(),
		Addr:          Env("CARRIER_ADDR", ":8095"),
		GatewayURL:    Env("CARRIER_GATEWAY_URL", "http://127.0.0.1:8080"),
		WebhookSecret: Env("CARRIER_WEBHOOK_SECRET", ""),
		PickupAfter:   EnvDuration("CARRIER_PICKUP_AFTER", 2*time.Second),
		TransitAfter:  EnvDuration("CARRIER_TRANSIT_AFTER", 2*time.Second),
		DeliverAfter:  EnvDuration("CARRIER_DELIVER_AFTER", 2*time.Second),
		LostRate:      EnvFloat("CARRIER_LOST_RATE", 0),
	}
}

// String renders the settings for the start-up log line, secrets masked.
func (f Fulfillment) String() string {
	return fmt.Sprintf("enabled=%t shipment_sla=%s carrier_url=%s webhook_secret=%s event_tolerance=%s return_window=%s",
		f.Enabled, f.ShipmentSLA, f.CarrierURL, secretSet(f.WebhookSecret), f.EventTolerance, f.ReturnWindow)
}

func secretSet(s string) string {
	if s == "" {
		return "unset"
	}
	return "set"
}
