-- +goose Up
-- notifications becomes a transactional outbox: the saga's confirming or
-- failing write inserts the message in its own transaction, and the worker's
-- non-critical pool delivers it. A claimed row is leased by moving
-- next_attempt_at forward, so a sender that dies leaves it to the next. Each
-- region's workers deliver their region's messages.
ALTER TABLE notifications
    ADD COLUMN region          text NOT NULL DEFAULT '',
    ADD COLUMN status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    ADD COLUMN attempts        integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN sent_at         timestamptz,
    ADD COLUMN last_error      text;
CREATE INDEX notifications_due ON notifications (region, next_attempt_at) WHERE status = 'pending';

-- +goose Down
DROP INDEX notifications_due;
ALTER TABLE notifications DROP COLUMN region, DROP COLUMN status, DROP COLUMN attempts, DROP COLUMN next_attempt_at,
    DROP COLUMN sent_at, DROP COLUMN last_error;
