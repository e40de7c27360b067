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

-- Approval requests for destructive steps. Every transition is a compare-and-set on
-- `state` (and `approvals`), so double clicks and replicas change a request once.
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    verb TEXT NOT NULL,
    command TEXT NOT NULL,
    requester TEXT NOT NULL,
    reason TEXT NOT NULL,
    preview TEXT NOT NULL,
    -- The fields the dry run would change and their values then: execution is refused
    -- when the cluster no longer shows them.
    fingerprint TEXT NOT NULL,
    approvals TEXT NOT NULL,
    required BIGINT NOT NULL,
    channel TEXT NOT NULL,
    message_ts TEXT,
    outcome TEXT,
    -- While executing: renewed by the executor; a lapsed lease means it died.
    lease_until_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX approvals_state ON approvals (state);

-- The audit log: every request, decision, execution and verification. Append-only.
CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at_ms);

-- Incidents opened by alerts or by hand. `number` gives people a short name (INC-7).
CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    number BIGINT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    entry TEXT,
    group_key TEXT,
    opened_by TEXT NOT NULL,
    opened_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    channel TEXT,
    thread_ts TEXT,
    owner TEXT,
    acked_at_ms BIGINT,
    acked_by TEXT,
    resolved_at_ms BIGINT,
    resolved_by TEXT,
    step BIGINT NOT NULL,
    step_at_ms BIGINT NOT NULL,
    last_status_at_ms BIGINT,
    last_human_update_at_ms BIGINT
);
CREATE INDEX incidents_state ON incidents (state);
-- One open incident per Alertmanager group, even with several replicas racing.
CREATE UNIQUE INDEX incidents_open_group ON incidents (group_key) WHERE state <> 'resolved';

-- The alerts seen for an incident, by fingerprint.
CREATE TABLE incident_alerts (
    incident_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    alertname TEXT NOT NULL,
    status TEXT NOT NULL,
    starts_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (incident_id, fingerprint)
);

-- Everything that happened to an incident, in order.
CREATE TABLE timeline (
    id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX timeline_incident ON timeline (incident_id, at_ms);

-- Due work (escalations, status updates, reminders): one row per (kind, subject),
-- claimed by exactly one replica with a lease, so it survives restarts.
CREATE TABLE timers (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    due_at_ms BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_until_ms BIGINT
);
CREATE INDEX timers_due ON timers (due_at_ms);

-- Interactive checklists (post-incident, maintenance, on demand): the ticks are
-- persisted so every replica and every restart shows the same state.
CREATE TABLE checklists (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    incident_id TEXT,
    channel TEXT NOT NULL,
    ts TEXT,
    items TEXT NOT NULL,
    done TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- Messages that must reach Slack (pings, escalations, status updates, approval outcomes):
-- kept until Slack accepted them, claimed by one replica with a lease like the timers.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    thread_ts TEXT,
    message TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    due_at_ms BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_until_ms BIGINT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (due_at_ms);
