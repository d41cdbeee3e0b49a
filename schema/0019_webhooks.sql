-- +goose Up
-- Signed outbound webhooks (activities/webhooks, docs/webhooks.md).
--   webhook_endpoints   a subscriber's URL and the event types it takes;
--                       secret is the signing secret (whsec_<base64>),
--                       previous_secret the one a rotation replaced, still
--                       signing until previous_expires_at; failing_since is
--                       the first failed attempt since the last success: an
--                       endpoint failing for WEBHOOKS_DISABLE_AFTER is disabled
--   webhook_deliveries  the delivery log: one row per attempt
--   event_outbox.webhooks_at  when the dispatcher handed the event to the
--                       endpoints' delivery workflows (NULL: not yet); rows
--                       older than this migration count as handed over, so
--                       a new endpoint starts with the events after it
CREATE TABLE webhook_endpoints (
    id                  uuid PRIMARY KEY,
    url                 text NOT NULL,
    description         text NOT NULL DEFAULT '',
    event_types         text[] NOT NULL,
    enabled             boolean NOT NULL DEFAULT true,
    disabled_reason     text,
    secret              text NOT NULL,
    previous_secret     text,
    previous_expires_at timestamptz,
    failing_since       timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id          bigserial PRIMARY KEY,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id    bigint NOT NULL,
    event_type  text NOT NULL,
    attempt     integer NOT NULL,
    status_code integer,
    latency_ms  double precision NOT NULL DEFAULT 0,
    error       text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);

ALTER TABLE event_outbox ADD COLUMN webhooks_at timestamptz;
UPDATE event_outbox SET webhooks_at = now();
CREATE INDEX event_outbox_webhooks_pending ON event_outbox (region, id) WHERE webhooks_at IS NULL;

-- +goose Down
DROP INDEX event_outbox_webhooks_pending;
ALTER TABLE event_outbox DROP COLUMN webhooks_at;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
