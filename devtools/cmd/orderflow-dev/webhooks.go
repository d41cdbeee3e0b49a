package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/orderflow/orderflow/devtools/subscriber"
)

const webhooksUsage = `usage: orderflow-dev webhooks listen --secret whsec_... [--addr 127.0.0.1:9009]

A local webhook subscriber: it receives orderflow's deliveries, verifies each
Standard Webhooks signature with the reference library, acknowledges it (204)
and prints the event; a delivery that does not verify is refused (400 missing
or malformed headers, 401 tampered, another secret, or a timestamp more than 5
minutes off) and printed as refused. --secret (or WEBHOOKS_LISTEN_SECRET) is
the endpoint's secret as POST /v1/webhook-endpoints answered it. Ctrl-C stops
it. The workers refuse loopback endpoints unless WEBHOOKS_ALLOW_PRIVATE=true
(make run sets it).
`

// runWebhooks is `orderflow-dev webhooks listen`: a subscriber for people
// trying the webhooks out (README walk-through). It lives here, not in the
// product binary: it is a test receiver, the same one the chaos run's
// subscribers are (devtools/subscriber), and production subscribers are
// other systems.
func runWebhooks(ctx context.Context, args []string) error {
	return listenWebhooks(ctx, os.Stdout, args, nil)
}

// listenWebhooks serves until ctx ends; ready, when set, is told the
// address it listens on.
func listenWebhooks(ctx context.Context, out io.Writer, args []string, ready func(addr string)) error {
	if len(args) == 0 || args[0] != "listen" {
		return fmt.Errorf("%s", webhooksUsage)
	}
	fs := flag.NewFlagSet("webhooks listen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	secret := fs.String("secret", "", "")
	addr := fs.String("addr", "127.0.0.1:9009", "")
	if err := flagsFromEnv(fs, "WEBHOOKS_LISTEN_"); err != nil {
		return fmt.Errorf("webhooks listen: %w", err)
	}
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		return fmt.Errorf("webhooks listen: bad arguments %q\n%s", args[1:], webhooksUsage)
	}
	if *secret == "" {
		return fmt.Errorf("webhooks listen: --secret is required\n%s", webhooksUsage)
	}
	rec, err := subscriber.New(*secret)
	if err != nil {
		return fmt.Errorf("webhooks listen: %w", err)
	}
	var mu sync.Mutex
	rec.OnDelivery = func(d subscriber.Delivery) {
		mu.Lock()
		defer mu.Unlock()
		dup := ""
		if d.Duplicate {
			dup = " (duplicate: already acknowledged, drop it)"
		}
		fmt.Fprintf(out, "%s verified webhook-id %s %s order %s%s\n", d.At.UTC().Format(time.RFC3339), d.ID, d.Envelope.Type, orNone(d.Envelope.OrderID), dup)
		b, _ := json.Marshal(d.Envelope)
		fmt.Fprintf(out, "  %s\n", b)
	}
	rec.OnRefusal = func(status int, reason string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "%s refused %d: %s\n", time.Now().UTC().Format(time.RFC3339), status, reason)
	}
	srv, err := subscriber.Listen(*addr, rec)
	if err != nil {
		return fmt.Errorf("webhooks listen: %w", err)
	}
	mu.Lock()
	fmt.Fprintf(out, "listening on http://%s/ for signed deliveries (Ctrl-C stops)\n", srv.Addr())
	mu.Unlock()
	if ready != nil {
		ready(srv.Addr())
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Close(sctx)
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
