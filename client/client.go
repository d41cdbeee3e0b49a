// Package client is a Go client of orderflow's HTTP API: placing, reading,
// listing and cancelling orders, the catalog and its search, a customer's
// erasure and the health endpoints. The end-to-end tests, the load harness
// and the chaos run drive the gateway through it, so an order is placed one way everywhere.
//
// A failure the gateway answered is a *Error (find it with errors.As, or its
// status with StatusOf); a request that got no answer returns the transport's
// error. The client never retries: the caller decides, and retrying a
// placement with the same Idempotency-Key is always safe.
//
//	c := client.New("http://127.0.0.1:8080", client.WithToken(token))
//	acc, _, err := c.PlaceOrder(ctx, client.OrderRequest{...}, uuid.NewString())
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Headers the API reads or sets.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplayed       = "Idempotent-Replayed"
	HeaderRequestID      = "X-Request-ID"
	HeaderHealthCached   = "Health-Cached"
)

// maxBody bounds what the client reads of an answer.
const maxBody = 4 << 20

// TokenSource returns the bearer token of a request, with or without its
// "Bearer " scheme; "" sends no Authorization header. It is called once per
// request, so it may mint or refresh tokens.
type TokenSource func(ctx context.Context) (string, error)

// Client calls one gateway. It is safe for concurrent use; With derives
// clients that share its connections.
type Client struct {
	base      string
	http      *http.Client
	token     TokenSource
	requestID string
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token (with or without its "Bearer " scheme) on every
// request.
func WithToken(token string) Option {
	return WithTokenSource(func(context.Context) (string, error) { return token, nil })
}

// WithTokenSource asks ts for the token of every request.
func WithTokenSource(ts TokenSource) Option { return func(c *Client) { c.token = ts } }

// WithHTTPClient sends the requests through h instead of a client with a
// 30-second timeout.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithRequestID sends id as X-Request-ID, the correlation id the gateway puts
// in its logs and traces; without it the gateway makes one.
func WithRequestID(id string) Option { return func(c *Client) { c.requestID = id } }

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// New returns a client of the gateway at baseURL (scheme, host and port, no
// trailing path), with no token unless an option gives one.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: defaultHTTP}
	for _, o := range opts {
		o(c)
	}
	return c
}

// With returns a copy of c with more options, sharing its HTTP client: a
// customer's view of the same gateway, say.
func (c *Client) With(opts ...Option) *Client {
	d := *c
	for _, o := range opts {
		o(&d)
	}
	return &d
}

// BaseURL is the gateway's address as New got it, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// answer is a response read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request. in, when not nil, is sent as JSON. A status in ok
// is decoded into out (when not nil); any other is returned as a *Error.
func (c *Client) do(ctx context.Context, method, path string, header http.Header, in, out any, ok ...int) (answer, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return answer{}, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return answer{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.requestID != "" {
		req.Header.Set(HeaderRequestID, c.requestID)
	}
	if c.token != nil {
		tok, err := c.token(ctx)
		if err != nil {
			return answer{}, fmt.Errorf("token: %w", err)
		}
		if tok != "" {
			if !strings.HasPrefix(tok, "Bearer ") {
				tok = "Bearer " + tok
			}
			req.Header.Set("Authorization", tok)
		}
	}
	res, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	a := answer{status: res.StatusCode, header: res.Header, body: b}
	if err != nil {
		return a, fmt.Errorf("read %d answer: %w", res.StatusCode, err)
	}
	for _, s := range ok {
		if s == res.StatusCode {
			if out != nil {
				if err := json.Unmarshal(b, out); err != nil {
					return a, fmt.Errorf("decode %d answer: %w", res.StatusCode, err)
				}
			}
			return a, nil
		}
	}
	return a, parseError(res.StatusCode, res.Header, b)
}

// withQuery appends q to path, when it holds anything.
func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// escape makes an id or SKU one path segment.
func escape(s string) string { return url.PathEscape(s) }
