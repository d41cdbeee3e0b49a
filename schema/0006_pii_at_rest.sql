-- +goose Up
-- The customer's e-mail is stored encrypted (internal/pii: AES-256-GCM, the
-- key id inside each value, bound to the order id). The plaintext columns
-- stay, nullable, only so rows written before this migration (or by a worker
-- still on the old release during a rolling upgrade) can be found and
-- encrypted: `orderflow migrate` encrypts them with the application's keys
-- and clears the plaintext; the outbox still delivers to such a row until
-- then. pii_erased_at marks an order whose personal data an admin erased.
ALTER TABLE orders
    ALTER COLUMN email DROP NOT NULL,
    ADD COLUMN email_enc     bytea,
    ADD COLUMN pii_erased_at timestamptz;
ALTER TABLE notifications
    ALTER COLUMN recipient DROP NOT NULL,
    ADD COLUMN recipient_enc bytea;
-- An erased customer's pending messages are cancelled, not sent.
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sent', 'dead', 'cancelled'));
-- What `orderflow migrate` has left to encrypt.
CREATE INDEX orders_email_plaintext ON orders (order_id) WHERE email IS NOT NULL;
CREATE INDEX notifications_recipient_plaintext ON notifications (id) WHERE recipient IS NOT NULL;

-- +goose Down
-- Going down loses the e-mail of every encrypted row: the database cannot
-- decrypt it.
DROP INDEX notifications_recipient_plaintext;
DROP INDEX orders_email_plaintext;
UPDATE notifications SET status = 'dead' WHERE status = 'cancelled';
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check CHECK (status IN ('pending', 'sent', 'dead'));
UPDATE notifications SET recipient = '' WHERE recipient IS NULL;
ALTER TABLE notifications DROP COLUMN recipient_enc, ALTER COLUMN recipient SET NOT NULL;
UPDATE orders SET email = '' WHERE email IS NULL;
ALTER TABLE orders DROP COLUMN pii_erased_at, DROP COLUMN email_enc, ALTER COLUMN email SET NOT NULL;
