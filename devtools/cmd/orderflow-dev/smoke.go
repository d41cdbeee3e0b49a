package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/devtools/lab"
)

// runSmoke is the two-command promise, tested: a fresh stack as make run
// starts it (the smoke profile: the same topology on ports of its own), an
// order placed through client/ that the simulated carrier delivers
// (DELIVERED, every shipment with its tracking number) with its search
// attributes, its history sealed and decoded for the operator, the deep
// health check, and a short bench as a check that the harness works. It
// stops the stack at the end, and fails naming each promise not kept.
func runSmoke(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("smoke", flag.ContinueOnError)
	data := fs.String("data", "", "the stack's directory (default .data/smoke)")
	ports := fs.String("ports", "", "default, free or base:N (default: LAB_PORTS, else free)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := checkoutAndData("smoke", data)
	if err != nil {
		return err
	}
	s, err := freshStack(root, "smoke", *data, *ports)
	if err != nil {
		return err
	}
	d := s.(devStack)
	defer func() {
		if err := d.Down(); err != nil {
			fmt.Fprintf(os.Stderr, "smoke: down: %v\n", err)
		}
	}()
	if err := s.Up(ctx); err != nil {
		return err
	}
	for _, kv := range d.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		_ = os.Setenv(k, v)
	}
	sm, err := newSmoke(ctx, d.Dev)
	if err != nil {
		return err
	}
	checks := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"a request without a token is refused with 401", sm.unauthenticated},
		{"an order is delivered by the simulated carrier; its replay is marked Idempotent-Replayed; visibility shows its search attributes", sm.order},
		{"the customer's mails about the order (confirmed, shipped, delivered) are in mailpit", sm.mails},
		{"the history is sealed; the codec server decodes it for the operator; the Web UI names it", sm.sealed},
		{"/health/deep confirms a synthetic order; the worker's /health answers", sm.health},
		{"a short bench writes a complete result (no speed is asserted)", sm.bench},
	}
	passed, failed := 0, 0
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		err := c.fn(cctx)
		cancel()
		if err != nil {
			failed++
			fmt.Printf("smoke: FAIL %s: %v\n", c.name, err)
			continue
		}
		passed++
		fmt.Printf("smoke: ok   %s\n", c.name)
	}
	fmt.Printf("smoke: %d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return fmt.Errorf("smoke: %d of %d failed (logs in %s)", failed, len(checks), filepath.Join(d.Config.Data, "logs"))
	}
	return nil
}

type smoke struct {
	d        *lab.Dev
	api      *client.Client
	customer *client.Client
	operator string
	cli      string
	orderID  string
}

func newSmoke(ctx context.Context, d *lab.Dev) (*smoke, error) {
	tokens, err := os.ReadFile(d.TokensFile())
	if err != nil {
		return nil, fmt.Errorf("smoke: the tokens make run writes: %w", err)
	}
	sm := &smoke{d: d, api: client.New(d.APIURL())}
	for _, l := range strings.Split(string(tokens), "\n") {
		if v, ok := strings.CutPrefix(l, "export OPERATOR_TOKEN="); ok {
			sm.operator = v
		}
	}
	if sm.operator == "" {
		return nil, fmt.Errorf("smoke: %s holds no OPERATOR_TOKEN", d.TokensFile())
	}
	// A customer's token, minted as make run's banner says to.
	out, err := exec.CommandContext(ctx, d.Config.Env["ORDERFLOW_BIN"], "token", "--sub", "c-smoke", "--role", "customer").Output()
	if err != nil {
		return nil, fmt.Errorf("smoke: orderflow token: %w", err)
	}
	sm.customer = sm.api.With(client.WithToken(strings.TrimSpace(string(out))))
	sm.cli, err = lab.TemporalCLI(d.Config.Root)
	return sm, err
}

func (sm *smoke) unauthenticated(ctx context.Context) error {
	_, err := sm.api.GetProduct(ctx, "SKU-1")
	if client.StatusOf(err) != http.StatusUnauthorized {
		return fmt.Errorf("GET /v1/products/SKU-1 without a token: %v, want 401", err)
	}
	return nil
}

func (sm *smoke) order(ctx context.Context) error {
	req := client.OrderRequest{CustomerID: "c-smoke", Items: []client.Item{{SKU: "SKU-1", Quantity: 2}},
		PaymentToken: "tok_visa", Email: "smoke@example.com",
		ShippingAddress: &client.Address{Name: "Smoke Test", Line1: "1 Main St", City: "Springfield", PostalCode: "62701", Country: "US"}}
	acc, _, err := sm.customer.PlaceOrder(ctx, req, "smoke-1")
	if err != nil {
		return fmt.Errorf("place: %w", err)
	}
	sm.orderID = acc.OrderID
	fmt.Printf("smoke: placed order %s\n", acc.OrderID)
	// Confirmed, handed to the carrier, picked up, in transit, delivered:
	// about 2 s a step on make run's carrier schedule.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	o, err := sm.customer.AwaitStatus(wctx, acc.OrderID, 100*time.Millisecond, func(s string) bool {
		return s == orderflow.StatusDelivered || s == orderflow.StatusFailed || s == orderflow.StatusCancelled
	})
	cancel()
	if err != nil || o.Status != orderflow.StatusDelivered {
		return fmt.Errorf("order %s is %s, not DELIVERED: %v", acc.OrderID, o.Status, err)
	}
	shipped, err := sm.customer.OrderShipments(ctx, acc.OrderID)
	if err != nil {
		return fmt.Errorf("shipments: %w", err)
	}
	if len(shipped.Shipments) == 0 {
		return fmt.Errorf("order %s is DELIVERED without shipments", acc.OrderID)
	}
	for _, sh := range shipped.Shipments {
		if sh.Status != "delivered" || sh.TrackingNumber == "" {
			return fmt.Errorf("shipment %s of order %s is %s with tracking number %q", sh.ShipmentID, acc.OrderID, sh.Status, sh.TrackingNumber)
		}
	}
	again, _, err := sm.customer.PlaceOrder(ctx, req, "smoke-1")
	if err != nil || !again.Replayed || again.OrderID != acc.OrderID {
		return fmt.Errorf("the replay of key smoke-1: %+v, %v; want the same order, Idempotent-Replayed", again, err)
	}
	query := `OrderStatus="DELIVERED" AND CustomerId="c-smoke" AND Region="local" AND OrderTotalCents=4980`
	return poll(ctx, 10*time.Second, "visibility shows order-"+acc.OrderID+" with its search attributes", func() error {
		out, err := sm.temporal(ctx, "workflow", "list", "--query", query, "-o", "json")
		if err != nil {
			return err
		}
		if !bytes.Contains(out, []byte("order-"+acc.OrderID)) {
			return errors.New("not listed yet")
		}
		return nil
	})
}

// mails finds the order's messages in mailpit by their Message-ID, which
// names the order (notification-<row>.<order id>@...): its confirmation and
// its shipment and its delivery.
func (sm *smoke) mails(ctx context.Context) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/api/v1/messages?limit=500", sm.d.Config.Ports["mailpit-ui"])
	return poll(ctx, 30*time.Second, "mailpit holds the order's confirmed, shipped and delivered mails", func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var list struct {
			Messages []struct {
				MessageID string
				Subject   string
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			return fmt.Errorf("mailpit's message list: %w", err)
		}
		var subjects []string
		for _, m := range list.Messages {
			if strings.Contains(m.MessageID, sm.orderID) {
				subjects = append(subjects, m.Subject)
			}
		}
		if len(subjects) < 3 {
			return fmt.Errorf("the order's mails so far: %q", subjects)
		}
		fmt.Printf("smoke: mails of order %s: %q\n", sm.orderID, subjects)
		return nil
	})
}

func (sm *smoke) temporal(ctx context.Context, args ...string) ([]byte, error) {
	args = append(args, "--address", sm.d.Config.Env["TEMPORAL_ADDRESS"])
	out, err := exec.CommandContext(ctx, sm.cli, args...).Output()
	if err != nil {
		return nil, fmt.Errorf("temporal %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// sealed: payloads are sealed in Temporal; the gateway's codec server
// opens them for the operator token make run prints, and the Web UI is
// pointed at it.
func (sm *smoke) sealed(ctx context.Context) error {
	if sm.orderID == "" {
		return errors.New("no order was placed")
	}
	wf := "order-" + sm.orderID
	raw, err := sm.temporal(ctx, "workflow", "show", "-w", wf, "-o", "json")
	if err != nil {
		return err
	}
	if bytes.Contains(raw, []byte("smoke@example.com")) || bytes.Contains(raw, []byte("tok_visa")) {
		return errors.New("the saga's history shows the e-mail or the card token")
	}
	codec := sm.d.Config.Env["TEMPORAL_UI_CODEC_ENDPOINT"]
	dec, err := sm.temporal(ctx, "workflow", "show", "-w", wf, "-o", "json", "--codec-endpoint", codec,
		"--codec-auth", "Bearer "+sm.operator)
	if err != nil {
		return fmt.Errorf("the codec server did not decode the history for the operator: %w", err)
	}
	var h struct {
		Events []struct {
			Started struct {
				Input struct {
					Payloads []struct {
						Data string `json:"data"`
					} `json:"payloads"`
				} `json:"input"`
			} `json:"workflowExecutionStartedEventAttributes"`
		} `json:"events"`
	}
	if err := json.Unmarshal(dec, &h); err != nil || len(h.Events) == 0 || len(h.Events[0].Started.Input.Payloads) == 0 {
		return fmt.Errorf("the decoded history holds no input: %v", err)
	}
	in, _ := base64.StdEncoding.DecodeString(h.Events[0].Started.Input.Payloads[0].Data)
	if !bytes.Contains(in, []byte("smoke@example.com")) {
		return errors.New("the decoded input does not hold the order's e-mail")
	}
	settings, err := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/api/v1/settings", sm.d.Config.Ports["temporal-ui"]))
	if err != nil {
		return err
	}
	if !strings.Contains(settings, codec) {
		return fmt.Errorf("the Web UI's settings do not name the codec endpoint %s", codec)
	}
	return nil
}

func (sm *smoke) health(ctx context.Context) error {
	rep, err := sm.api.With(client.WithToken(sm.operator)).Deep(ctx)
	if err != nil {
		return fmt.Errorf("GET /health/deep: %w", err)
	}
	if rep.Status != "ok" || rep.Checks["synthetic_order"].Status != "ok" {
		return fmt.Errorf("GET /health/deep: %s, synthetic order %+v", rep.Status, rep.Checks["synthetic_order"])
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/health", sm.d.Config.Ports["worker"])
	return poll(ctx, 15*time.Second, "the worker's GET /health", func() error { _, err := get(ctx, url); return err })
}

func (sm *smoke) bench(ctx context.Context) error {
	results := filepath.Join(sm.d.Config.Data, "bench-results")
	if err := runBench(ctx, []string{"--data", sm.d.Config.Data, "--rate-start", "10", "--step-factor", "2", "--rate-max", "20",
		"--step", "4s", "--refine", "0", "--fixed", "8s", "--results", results}); err != nil {
		return err
	}
	files, _ := filepath.Glob(filepath.Join(results, "*.json"))
	charts, _ := filepath.Glob(filepath.Join(results, "*.svg"))
	if len(files) != 1 || len(charts) == 0 {
		return fmt.Errorf("the bench wrote %v and %v, want one result and its chart", files, charts)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		return err
	}
	var r map[string]any
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	for _, k := range []string{"orders_per_sec", "baseline_per_sec", "ratio", "accept_ms", "complete_ms", "errors",
		"cpu_ms_per_order", "rss_mb", "events_per_order"} {
		if _, ok := r[k]; !ok {
			return fmt.Errorf("the result has no %s", k)
		}
	}
	for _, k := range []string{"accept_ms", "complete_ms"} {
		m, _ := r[k].(map[string]any)
		for _, p := range []string{"p50", "p95", "p99"} {
			if _, ok := m[p]; !ok {
				return fmt.Errorf("the result's %s has no %s", k, p)
			}
		}
	}
	fixed, _ := r["fixed_orders"].(float64)
	events, _ := r["events_per_order"].(float64)
	rss, _ := r["rss_mb"].(map[string]any)
	cpu, _ := r["cpu_ms_per_order"].(map[string]any)
	if fixed <= 0 || events <= 0 || rss["gateway"] == nil || cpu["temporal"] == nil {
		return fmt.Errorf("the result is incomplete: fixed_orders %v, events_per_order %v, rss_mb %v, cpu_ms_per_order %v",
			fixed, events, rss, cpu)
	}
	return nil
}

// poll runs fn until it passes, every 200 ms, for at most d.
func poll(ctx context.Context, d time.Duration, what string, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not within %s: %w", what, d, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	return string(b), nil
}
