-- Alertmanager notifications, accepted by the webhook and not yet applied: the webhook only
-- checks a body and inserts it here, so its answer never waits for the incident work; the
-- intake loop of any replica claims rows with a lease, applies them and deletes them. A row
-- whose applier died is claimed again once its lease lapsed.
--
-- `id` orders the rows, and a group's notifications are applied in that order: a row stored
-- after another was committed has the greater id. Neither engine's auto-increment is written
-- the same way in the other (SQLite's INTEGER PRIMARY KEY, PostgreSQL's identity columns),
-- so the store assigns it (store::inbox::enqueue_alert): on SQLite from the one-row counter
-- below, in the inserting write transaction, never reused after a delete; on PostgreSQL the
-- inserting transaction's 64-bit id, which increases across sessions without a lock.
CREATE TABLE alert_inbox_ids (
    last_id BIGINT NOT NULL
);
INSERT INTO alert_inbox_ids (last_id) VALUES (0);

CREATE TABLE alert_inbox (
    id BIGINT PRIMARY KEY,
    -- Alertmanager's groupKey: a row waits while an older row of its group is in the inbox.
    group_key TEXT NOT NULL,
    -- The body as received, already validated by the webhook; parsed again when applied.
    body TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    -- Failed applications so far, and the last one's error.
    attempts BIGINT NOT NULL,
    due_at_ms BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_until_ms BIGINT,
    last_error TEXT
);
CREATE INDEX alert_inbox_due ON alert_inbox (due_at_ms);
CREATE INDEX alert_inbox_group ON alert_inbox (group_key, id);
