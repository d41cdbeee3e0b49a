package client

import (
	"context"
	"fmt"
	"net/http"
)

// WebhookEndpoint is a subscriber's endpoint as the gateway shows it;
// Secret is set only in the answer that created it.
type WebhookEndpoint struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Description string   `json:"description"`
	EventTypes  []string `json:"event_types"`
	Enabled     bool     `json:"enabled"`
	Secret      string   `json:"secret,omitempty"`
}

// CreateWebhookEndpoint (operators) registers an endpoint for the events of
// the given types: 201 with its signing secret, shown this once; 400 for a
// bad URL or unknown types.
func (c *Client) CreateWebhookEndpoint(ctx context.Context, url string, eventTypes []string, description string) (WebhookEndpoint, error) {
	body := struct {
		URL         string   `json:"url"`
		EventTypes  []string `json:"event_types"`
		Description string   `json:"description"`
	}{url, eventTypes, description}
	var e WebhookEndpoint
	if _, err := c.do(ctx, http.MethodPost, "/v1/webhook-endpoints", nil, body, &e, http.StatusCreated); err != nil {
		return WebhookEndpoint{}, fmt.Errorf("register webhook endpoint %s: %w", url, err)
	}
	return e, nil
}
