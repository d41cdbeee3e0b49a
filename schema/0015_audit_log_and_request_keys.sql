-- +goose Up
-- Idempotency-Key on every mutating route (docs/api.md): the acceptance
-- records of order placement also hold the keys of the other routes. Such a
-- record has no order; it is claimed before the request runs (response_status
-- NULL: in flight, owned until lease_until) and completed with the answer
-- once the request succeeded, so a retry or a concurrent duplicate gets the
-- first answer. A record whose owner died is taken over after its lease.
ALTER TABLE idempotency_keys
    ALTER COLUMN order_id DROP NOT NULL,
    ALTER COLUMN response_status DROP NOT NULL,
    ALTER COLUMN response_body DROP NOT NULL,
    ADD COLUMN response_location text,
    ADD COLUMN lease_until timestamptz;

-- The audit log (docs/security.md): every operator and admin act, appended
-- and never changed. Each row holds the hash of the row before it (prev_hash)
-- and its own (hash, over its fields and prev_hash), so an edited, removed or
-- inserted row breaks the chain where `orderflow audit verify` finds it.
-- Appends are serialized by a transaction-scoped advisory lock, so the chain
-- follows id order.
CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    role       text NOT NULL,
    action     text NOT NULL,
    target     text NOT NULL,
    reason     text NOT NULL DEFAULT '',
    request_id text NOT NULL DEFAULT '',
    details    jsonb NOT NULL DEFAULT '{}',
    prev_hash  bytea NOT NULL,
    hash       bytea NOT NULL UNIQUE
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_target ON audit_log (target, id);

-- The application may only append and read. The owner's own privileges are
-- revoked too, for the common case where the application runs as the role
-- that migrated; in production the schema is owned by a migration role and
-- the application role is granted INSERT and SELECT only (docs/security.md).
-- The trigger refuses changes even to a role that grants itself UPDATE back.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC, CURRENT_USER;

-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
DELETE FROM idempotency_keys WHERE order_id IS NULL;
ALTER TABLE idempotency_keys
    DROP COLUMN lease_until,
    DROP COLUMN response_location,
    ALTER COLUMN response_body SET NOT NULL,
    ALTER COLUMN response_status SET NOT NULL,
    ALTER COLUMN order_id SET NOT NULL;
