package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"
)

// Error types of the Send activity that end an event's delivery at once.
const (
	// ErrTypeEndpointGone: the endpoint was deleted or disabled.
	ErrTypeEndpointGone = "EndpointGone"
	// ErrTypeEventGone: the outbox no longer holds the event.
	ErrTypeEventGone = "EventGone"
)

// Activities send webhooks and start replays. Register with
// w.RegisterActivity(&webhooks.Activities{...}).
type Activities struct {
	DB *pgxpool.Pool
	// HTTP sends the requests; build it with NewHTTPClient.
	HTTP *http.Client
	// Temporal starts the deliveries of a replay.
	Temporal client.Client
	// DisableAfter disables an endpoint that has failed for this long with
	// no success in between (WEBHOOKS_DISABLE_AFTER); zero means 24 h.
	DisableAfter time.Duration
	Log          *zap.Logger
}

// ErrPrivateAddress is returned for a connection the client refuses: to a
// loopback, private, link-local or unspecified address.
var ErrPrivateAddress = errors.New("webhook endpoint resolves to a private address")

// NewHTTPClient returns the client deliveries are sent with: each attempt
// bounded by timeout, redirects not followed (a 3xx is a failure), and,
// unless allowPrivate, no connection to a loopback, private (RFC 1918,
// RFC 4193), link-local or unspecified address, checked on the address
// actually dialled so a DNS name cannot point the worker at its own network.
func NewHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip := net.ParseIP(host)
			if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
				ip.IsUnspecified() || ip.IsMulticast() {
				return fmt.Errorf("%w: %s", ErrPrivateAddress, host)
			}
			return nil
		}
	}
	tr := &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: timeout, MaxIdleConnsPerHost: 4,
		IdleConnTimeout: 90 * time.Second, Proxy: nil}
	return &http.Client{Timeout: timeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// SendInput names the event to send and where.
type SendInput struct {
	EndpointID string
	EventID    int64
}

// SendResult says how the event went out.
type SendResult struct {
	StatusCode int
	// Skipped is why nothing was sent (the endpoint disabled or deleted, the
	// event gone); empty when the endpoint took it.
	Skipped string
}

// Send signs and posts one event to one endpoint and logs the attempt. A
// 2xx answer is success; anything else is a retryable error, except once
// the endpoint has failed for DisableAfter: it is then disabled and the
// error is non-retryable (EndpointGone), as for a deleted or disabled
// endpoint or an event the outbox no longer holds (EventGone).
func (a *Activities) Send(ctx context.Context, in SendInput) (SendResult, error) {
	st := Store{DB: a.DB}
	t, err := st.target(ctx, in.EndpointID)
	if errors.Is(err, ErrNotFound) || (err == nil && !t.enabled) {
		deliveries.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "skipped")))
		return SendResult{}, temporal.NewNonRetryableApplicationError("endpoint deleted or disabled", ErrTypeEndpointGone, nil)
	}
	if err != nil {
		return SendResult{}, err
	}
	env, err := st.Event(ctx, in.EventID)
	if errors.Is(err, ErrNotFound) {
		deliveries.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "skipped")))
		return SendResult{}, temporal.NewNonRetryableApplicationError("event no longer in the outbox", ErrTypeEventGone, nil)
	}
	if err != nil {
		return SendResult{}, err
	}
	body, err := json.Marshal(env)
	if err != nil {
		return SendResult{}, fmt.Errorf("encode event %d: %w", in.EventID, err)
	}
	attempt := Attempt{EventID: in.EventID, EventType: env.Type, Attempt: 1}
	if activity.IsActivity(ctx) {
		attempt.Attempt = int(activity.GetInfo(ctx).Attempt)
	}
	start := time.Now()
	code, sendErr := a.post(ctx, t, env.ID, body)
	attempt.StatusCode, attempt.LatencyMS = code, float64(time.Since(start).Microseconds())/1000
	if sendErr != nil {
		attempt.Error = sendErr.Error()
	}
	if err := st.record(ctx, in.EndpointID, attempt); err != nil {
		return SendResult{}, err
	}
	if sendErr == nil {
		deliveries.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "delivered")))
		return SendResult{StatusCode: code}, st.healthy(ctx, in.EndpointID)
	}
	deliveries.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "failed")))
	disableAfter := a.DisableAfter
	if disableAfter <= 0 {
		disableAfter = 24 * time.Hour
	}
	disabled, err := st.failing(ctx, in.EndpointID, disableAfter)
	if err != nil {
		return SendResult{}, err
	}
	if disabled {
		disabledCount.Add(ctx, 1)
		if a.Log != nil {
			a.Log.Error("webhook endpoint disabled after failing", zap.String("endpoint_id", in.EndpointID),
				zap.Duration("failing_for", a.DisableAfter), zap.Error(sendErr))
		}
		return SendResult{StatusCode: code}, temporal.NewNonRetryableApplicationError("endpoint disabled after failing", ErrTypeEndpointGone, sendErr)
	}
	return SendResult{StatusCode: code}, sendErr
}

// post sends one signed request and returns the status code.
func (a *Activities) post(ctx context.Context, t target, id string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "orderflow-webhooks/1")
	if err := SetHeaders(req.Header, t.secrets, id, time.Now(), body); err != nil {
		return 0, err
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("webhook post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("webhook post: endpoint answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// ReplayInput asks for the events of an endpoint's types after a cursor
// (an event id) and at or after a time.
type ReplayInput struct {
	EndpointID string
	After      int64
	Since      time.Time
	Limit      int
	Policy     Policy
}

// ReplayResult is how far one page of a replay went.
type ReplayResult struct {
	// Last is the id of the page's last event: the next page's After.
	Last  int64
	Count int
}

// ReplayPage hands the next page of the endpoint's events, in id order, to
// its delivery workflows with Force set. Run again after a failure it
// signals some events twice; each goes out again, which a subscriber that
// dedupes on webhook-id absorbs.
func (a *Activities) ReplayPage(ctx context.Context, in ReplayInput) (ReplayResult, error) {
	const q = `SELECT e.id, e.partition FROM event_outbox e JOIN webhook_endpoints w ON w.id = $1
		WHERE e.id > $2 AND e.occurred_at >= $3 AND e.type = ANY (w.event_types) ORDER BY e.id LIMIT $4`
	rows, err := a.DB.Query(ctx, q, in.EndpointID, in.After, in.Since, in.Limit)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("read replay page: %w", err)
	}
	type ev struct {
		id        int64
		partition string
	}
	var page []ev
	for rows.Next() {
		var e ev
		if err := rows.Scan(&e.id, &e.partition); err != nil {
			rows.Close()
			return ReplayResult{}, fmt.Errorf("read replay page: %w", err)
		}
		page = append(page, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return ReplayResult{}, fmt.Errorf("read replay page: %w", err)
	}
	res := ReplayResult{Last: in.After}
	for _, e := range page {
		if err := Signal(ctx, a.Temporal, in.Policy, in.EndpointID, e.partition, Item{EventID: e.id, Force: true}); err != nil {
			return res, err
		}
		res.Last, res.Count = e.id, res.Count+1
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, res.Last)
		}
	}
	return res, nil
}
