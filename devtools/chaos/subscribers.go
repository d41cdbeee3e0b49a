package chaos

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/orderflow/orderflow/activities/webhooks"
	"github.com/orderflow/orderflow/devtools/subscriber"
	"github.com/orderflow/orderflow/internal/auth"
)

// The run's webhook subscribers (issue 22): local receivers that verify
// every delivery's Standard Webhooks signature with the reference library
// (devtools/subscriber) and, in turn, fail for a window (503, held past the
// sender's timeout, connection refused) and recover. Afterwards each must
// have seen every event of its types of the run's orders exactly once after
// dedupe by webhook-id, and each order's events in the order of the stream
// (outbox ids).
//
// Their cost is kept small: "erp" takes an order's lifecycle (a few events
// per order), "payments" only what moves money back, which few orders have;
// both take order.cancelled and order.failed, so one event goes to two
// endpoints.
var subscriberSpecs = []struct {
	name  string
	types []string
}{
	{"erp", []string{"order.created", "order.confirmed", "order.shipped", "order.delivered", "order.cancelled", "order.failed"}},
	{"payments", []string{"payment.refunded", "order.cancelled", "order.failed"}},
}

// Subscriber fault windows: each subscriber fails for subscriberHold every
// subscriberEvery, taking subscriber.FailModes in turn; the second starts
// half a period later, so one is always healthy.
const (
	subscriberHold  = 6 * time.Second
	subscriberEvery = 16 * time.Second
	// subscriberStall bounds the wait, once the orders settled, for the
	// next delivery to arrive while some are missing: the retry backoff of
	// the chaos stack tops at a few seconds, so a minute with none is no
	// backlog but a loss. The whole wait stays within the run's Quiesce.
	subscriberStall = time.Minute
)

// chaosSubscriber is one registered endpoint and its receiver.
type chaosSubscriber struct {
	name, endpointID string
	types            []string
	srv              *subscriber.Server
	windows          []*window
}

// SubscriberReport is what one subscriber saw.
type SubscriberReport struct {
	Name       string   `json:"name"`
	EventTypes []string `json:"event_types"`
	// Events are the run's events of its types; Received those it
	// acknowledged at least once.
	Events   int `json:"events"`
	Received int `json:"received"`
	// Deliveries are the acknowledged deliveries, Duplicates those of an id
	// already acknowledged (dropped by dedupe).
	Deliveries int `json:"deliveries"`
	Duplicates int `json:"duplicates_dropped"`
	// Attempts and Retries are from the endpoint's delivery log: every
	// attempt, and those beyond an event's first.
	Attempts int `json:"attempts"`
	Retries  int `json:"retries"`
	// Refused counts deliveries the receiver did not acknowledge, by status
	// (503: its fault windows; 400 and 401: a signature that did not verify).
	Refused map[string]int `json:"refused"`
	// MaxDelaySec is the longest time from an event's occurred_at to its
	// first acknowledged delivery.
	MaxDelaySec float64   `json:"max_delay_s"`
	Windows     []*window `json:"fault_windows"`
}

// startSubscribers starts the receivers on free loopback ports and
// registers their endpoints through the gateway (the stack runs with
// WEBHOOKS_ALLOW_PRIVATE=true).
func (r *Runner) startSubscribers(ctx context.Context) error {
	operator := r.gateway("chaos-operator", auth.RoleOperator)
	for _, spec := range subscriberSpecs {
		// The receiver starts with a secret of its own: the endpoint's
		// comes with its registration, which needs the receiver's address.
		placeholder, err := webhooks.NewSecret()
		if err != nil {
			return err
		}
		rec, err := subscriber.New(placeholder)
		if err != nil {
			return err
		}
		srv, err := subscriber.Listen("127.0.0.1:0", rec)
		if err != nil {
			return err
		}
		s := &chaosSubscriber{name: spec.name, types: spec.types, srv: srv}
		r.subs = append(r.subs, s)
		ep, err := operator.CreateWebhookEndpoint(ctx, "http://"+srv.Addr()+"/", spec.types, "chaos subscriber "+spec.name)
		if err != nil {
			return err
		}
		if err := rec.SetSecret(ep.Secret); err != nil {
			return err
		}
		s.endpointID = ep.ID
	}
	return nil
}

// failSubscribers runs the subscribers' fault windows until ctx ends, then
// leaves every subscriber healthy.
func (r *Runner) failSubscribers(ctx context.Context) {
	done := make(chan struct{})
	for i, s := range r.subs {
		go func() {
			defer func() { done <- struct{}{} }()
			offset := time.Duration(i) * subscriberEvery / time.Duration(len(r.subs))
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-time.After(offset + subscriberEvery - subscriberHold):
				}
				offset = 0
				mode := subscriber.FailModes[n%len(subscriber.FailModes)]
				w := &window{Kind: "subscriber_" + string(mode), Detail: s.name, Start: time.Now()}
				if err := s.srv.SetMode(mode); err != nil {
					w.Err = err.Error()
				}
				select {
				case <-ctx.Done():
				case <-time.After(subscriberHold):
				}
				if err := s.srv.SetMode(subscriber.ModeOK); err != nil {
					w.Err = err.Error()
				}
				w.End = time.Now()
				r.mu.Lock()
				s.windows = append(s.windows, w)
				r.mu.Unlock()
			}
		}()
	}
	for range r.subs {
		<-done
	}
}

func (r *Runner) closeSubscribers() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range r.subs {
		_ = s.srv.Close(ctx)
	}
}

// outboxEvent is one of the run's events a subscriber must see.
type outboxEvent struct {
	id         int64
	typ, order string
}

// checkSubscribers waits until every subscriber acknowledged every event
// of its types of the run's orders (or none arrived for subscriberStall, or
// the run's Quiesce passed), then checks
// the subscribers' invariants and fills in their reports.
func (r *Runner) checkSubscribers(ctx context.Context, ids []string) ([]Invariant, []SubscriberReport, error) {
	const q = `SELECT id, type, order_id::text FROM event_outbox WHERE order_id = ANY($1::uuid[]) AND type = ANY($2) ORDER BY id`
	expected := make([][]outboxEvent, len(r.subs))
	deadline, stall := time.Now().Add(r.cfg.Quiesce), time.Now().Add(subscriberStall)
	lastMissing := -1
	for {
		missing := 0
		for i, s := range r.subs {
			rows, err := r.db.Query(ctx, q, ids, s.types)
			if err != nil {
				return nil, nil, fmt.Errorf("read event outbox: %w", err)
			}
			expected[i] = expected[i][:0]
			for rows.Next() {
				var e outboxEvent
				if err := rows.Scan(&e.id, &e.typ, &e.order); err != nil {
					rows.Close()
					return nil, nil, fmt.Errorf("read event outbox: %w", err)
				}
				expected[i] = append(expected[i], e)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, nil, fmt.Errorf("read event outbox: %w", err)
			}
			got := acknowledged(s.srv.Deliveries())
			for _, e := range expected[i] {
				if _, ok := got[strconv.FormatInt(e.id, 10)]; !ok {
					missing++
				}
			}
		}
		if missing != lastMissing {
			lastMissing, stall = missing, time.Now().Add(subscriberStall)
		}
		if missing == 0 || time.Now().After(deadline) || time.Now().After(stall) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}

	once := Invariant{Name: "each webhook subscriber saw every event of its types exactly once after dedupe by webhook-id, signatures verified"}
	ordered := Invariant{Name: "each webhook subscriber saw each order's events in the stream's order (outbox ids)"}
	reports := make([]SubscriberReport, len(r.subs))
	for i, s := range r.subs {
		rep, err := r.subscriberReport(ctx, s, expected[i])
		if err != nil {
			return nil, nil, err
		}
		reports[i] = rep
		once.Checked += len(expected[i])
		once.Counterexamples = append(once.Counterexamples, exactlyOnce(s, expected[i], ids)...)
		ordered.Checked += len(expected[i])
		ordered.Counterexamples = append(ordered.Counterexamples, inOrder(s)...)
	}
	return []Invariant{done(once), done(ordered)}, reports, nil
}

// acknowledged maps each id to its first acknowledged delivery.
func acknowledged(ds []subscriber.Delivery) map[string]subscriber.Delivery {
	first := map[string]subscriber.Delivery{}
	for _, d := range ds {
		if _, ok := first[d.ID]; !ok {
			first[d.ID] = d
		}
	}
	return first
}

// exactlyOnce: every expected event acknowledged; nothing acknowledged of
// a type the subscriber did not take or of the run's orders but not in the
// outbox; a duplicate is the same event again (same type, order and time);
// no delivery failed its signature check.
func exactlyOnce(s *chaosSubscriber, expected []outboxEvent, ids []string) []string {
	var out []string
	ds := s.srv.Deliveries()
	first := acknowledged(ds)
	want := map[string]bool{}
	for _, e := range expected {
		id := strconv.FormatInt(e.id, 10)
		want[id] = true
		if _, ok := first[id]; !ok {
			out = append(out, fmt.Sprintf("%s: event %s %s of %s never acknowledged", s.name, id, e.typ, e.order))
		}
	}
	run := map[string]bool{}
	for _, id := range ids {
		run[id] = true
	}
	for _, d := range ds {
		env := d.Envelope
		switch f := first[d.ID].Envelope; {
		case !slices.Contains(s.types, env.Type):
			out = append(out, fmt.Sprintf("%s: event %s of type %s, which it did not subscribe to", s.name, d.ID, env.Type))
		case run[env.OrderID] && !want[d.ID]:
			out = append(out, fmt.Sprintf("%s: event %s %s of %s is not in the outbox", s.name, d.ID, env.Type, env.OrderID))
		case d.Duplicate && (f.Type != env.Type || f.OrderID != env.OrderID || !f.OccurredAt.Equal(env.OccurredAt)):
			out = append(out, fmt.Sprintf("%s: webhook-id %s redelivered as another event (%s of %s, first %s of %s)",
				s.name, d.ID, env.Type, env.OrderID, f.Type, f.OrderID))
		}
	}
	for status, n := range s.srv.Refusals() {
		if status == 400 || status == 401 {
			out = append(out, fmt.Sprintf("%s: %d deliveries refused %d (signature or headers did not verify)", s.name, n, status))
		}
	}
	return out
}

// inOrder: per order, the first acknowledgements come in increasing event
// id.
func inOrder(s *chaosSubscriber) []string {
	var out []string
	last := map[string]int64{}
	seen := map[string]bool{}
	for _, d := range s.srv.Deliveries() {
		if seen[d.ID] || d.Envelope.OrderID == "" {
			continue
		}
		seen[d.ID] = true
		id, err := strconv.ParseInt(d.ID, 10, 64)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: webhook-id %q is not an outbox id", s.name, d.ID))
			continue
		}
		if prev, ok := last[d.Envelope.OrderID]; ok && id < prev {
			out = append(out, fmt.Sprintf("%s: order %s: event %d (%s) acknowledged after event %d", s.name, d.Envelope.OrderID, id, d.Envelope.Type, prev))
		}
		last[d.Envelope.OrderID] = max(last[d.Envelope.OrderID], id)
	}
	return out
}

// subscriberReport counts what one subscriber saw, with the attempts of its
// endpoint's delivery log.
func (r *Runner) subscriberReport(ctx context.Context, s *chaosSubscriber, expected []outboxEvent) (SubscriberReport, error) {
	rep := SubscriberReport{Name: s.name, EventTypes: s.types, Events: len(expected), Refused: map[string]int{}}
	ds := s.srv.Deliveries()
	first := acknowledged(ds)
	want := map[string]bool{}
	for _, e := range expected {
		want[strconv.FormatInt(e.id, 10)] = true
	}
	rep.Deliveries = len(ds)
	for _, d := range ds {
		if d.Duplicate {
			rep.Duplicates++
		}
	}
	for id, d := range first {
		if want[id] {
			rep.Received++
			rep.MaxDelaySec = max(rep.MaxDelaySec, d.At.Sub(d.Envelope.OccurredAt).Seconds())
		}
	}
	for status, n := range s.srv.Refusals() {
		rep.Refused[strconv.Itoa(status)] = n
	}
	const q = `SELECT count(*), count(DISTINCT event_id) FROM webhook_deliveries WHERE endpoint_id = $1::uuid`
	var events int
	if err := r.db.QueryRow(ctx, q, s.endpointID).Scan(&rep.Attempts, &events); err != nil {
		return rep, fmt.Errorf("read the delivery log of %s: %w", s.name, err)
	}
	rep.Retries = rep.Attempts - events
	r.mu.Lock()
	rep.Windows = append([]*window(nil), s.windows...)
	r.mu.Unlock()
	return rep, nil
}

// printSubscribers writes the subscribers' table.
func printSubscribers(w io.Writer, reps []SubscriberReport) {
	if len(reps) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%-10s %7s %9s %11s %11s %9s %8s %12s  %s\n", "subscriber", "events", "received", "deliveries", "duplicates", "attempts", "retries", "max delay s", "fault windows")
	for _, s := range reps {
		kinds := map[string]int{}
		for _, win := range s.Windows {
			kinds[win.Kind]++
		}
		fmt.Fprintf(w, "%-10s %7d %9d %11d %11d %9d %8d %12.1f  5xx %d, timeout %d, refused %d\n", s.Name, s.Events, s.Received, s.Deliveries,
			s.Duplicates, s.Attempts, s.Retries, s.MaxDelaySec, kinds["subscriber_5xx"], kinds["subscriber_timeout"], kinds["subscriber_refused"])
	}
}
