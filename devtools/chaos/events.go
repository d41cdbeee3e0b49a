package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/orderflow/orderflow/activities/events"
)

// eventWatch is the run's own JetStream consumer: a durable consumer on
// every event stream that records each message's id (Nats-Msg-Id, the
// outbox row id) and stream sequence, and dedupes on the id as a consumer
// should. It leaves unackAt of the first deliveries unacknowledged, as a
// consumer that crashed before its ack would, so JetStream redelivers
// them (AckWait later); a redelivery must carry the id its sequence had.
type eventWatch struct {
	nc   *nats.Conn
	runs []jetstream.ConsumeContext
	rnd  *rand.Rand
	out  io.Writer

	mu sync.Mutex
	// bySeq: stream/sequence -> id; seqs: id -> the stream sequences it
	// was stored at (more than one: published twice).
	bySeq map[string]string
	seqs  map[string]map[string]bool
	// orders: order id -> event type -> ids.
	orders      map[string]map[string]map[string]bool
	redelivered int
	unacked     int
	mismatched  []string // header and envelope ids that differ, or a sequence whose id changed
}

const unackAt = 0.02

// watchEvents connects to NATS and starts a consumer on every stream,
// waiting for the relay to have created them.
func watchEvents(ctx context.Context, url string, seed uint64, out io.Writer) (*eventWatch, error) {
	nc, err := nats.Connect(url, nats.Name("orderflow-chaos"), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	w := &eventWatch{nc: nc, rnd: rand.New(rand.NewPCG(seed, 7)), out: out, bySeq: map[string]string{},
		seqs: map[string]map[string]bool{}, orders: map[string]map[string]map[string]bool{}}
	durable := fmt.Sprintf("chaos-%d", seed%1_000_000_007)
	deadline := time.Now().Add(2 * time.Minute)
	for _, s := range events.Streams {
		for {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			c, err := js.CreateOrUpdateConsumer(cctx, s.Name, jetstream.ConsumerConfig{Durable: durable,
				AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy, AckWait: 2 * time.Second})
			cancel()
			if err == nil {
				cc, err := c.Consume(w.handle(s.Name), jetstream.ConsumeErrHandler(func(jetstream.ConsumeContext, error) {}))
				if err != nil {
					w.close()
					return nil, fmt.Errorf("consume %s: %w", s.Name, err)
				}
				w.runs = append(w.runs, cc)
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				w.close()
				return nil, fmt.Errorf("consumer on %s: %w", s.Name, err)
			}
			time.Sleep(time.Second) // the relay creates the streams when it takes the lead
		}
	}
	return w, nil
}

func (w *eventWatch) handle(stream string) jetstream.MessageHandler {
	return func(msg jetstream.Msg) {
		meta, err := msg.Metadata()
		if err != nil {
			_ = msg.Ack()
			return
		}
		var env events.Envelope
		_ = json.Unmarshal(msg.Data(), &env)
		id := msg.Headers().Get(jetstream.MsgIDHeader)
		seq := stream + "/" + strconv.FormatUint(meta.Sequence.Stream, 10)
		w.mu.Lock()
		if env.ID != id {
			w.mismatched = append(w.mismatched, fmt.Sprintf("%s: Nats-Msg-Id %q, envelope id %q", seq, id, env.ID))
		}
		if prev, ok := w.bySeq[seq]; ok && prev != id {
			w.mismatched = append(w.mismatched, fmt.Sprintf("%s redelivered as id %q, first %q", seq, id, prev))
		}
		w.bySeq[seq] = id
		if w.seqs[id] == nil {
			w.seqs[id] = map[string]bool{}
		}
		w.seqs[id][seq] = true
		if env.OrderID != "" {
			byType := w.orders[env.OrderID]
			if byType == nil {
				byType = map[string]map[string]bool{}
				w.orders[env.OrderID] = byType
			}
			if byType[env.Type] == nil {
				byType[env.Type] = map[string]bool{}
			}
			byType[env.Type][id] = true
		}
		if meta.NumDelivered > 1 {
			w.redelivered++
		}
		skip := meta.NumDelivered == 1 && w.rnd.Float64() < unackAt
		if skip {
			w.unacked++
		}
		w.mu.Unlock()
		if !skip {
			_ = msg.Ack()
		}
	}
}

func (w *eventWatch) close() {
	for _, cc := range w.runs {
		cc.Stop()
	}
	w.nc.Close()
}

type eventStats struct {
	Redelivered, Unacked int
}

func (w *eventWatch) stats() eventStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return eventStats{Redelivered: w.redelivered, Unacked: w.unacked}
}

// seen reports the stream sequences each id was stored at.
func (w *eventWatch) seen(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seqs[id])
}
