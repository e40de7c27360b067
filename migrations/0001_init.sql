-- Portable between SQLite and PostgreSQL: TEXT and BIGINT only, times as Unix
-- milliseconds, no engine-specific defaults.

-- Every inbound event's idempotency key; a redelivered event finds its key here.
CREATE TABLE inbound_events (
    idempotency_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    envelope_id TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL
);
CREATE INDEX inbound_events_received_at ON inbound_events (received_at_ms);

-- Approval requests for destructive actions (the two-person flow fills in the rest).
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX approvals_state ON approvals (state);

-- Incidents opened by alerts or by hand.
CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    opened_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX incidents_state ON incidents (state);
