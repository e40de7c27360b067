-- Approval cards go through the outbox too. A message for a request's thread queued before
-- its card was posted waits for the card, as incident messages wait for their root; the
-- card's own row (card = 1) names its request, so the sender records the card's ts.
ALTER TABLE outbox ADD COLUMN request_id TEXT;
ALTER TABLE outbox ADD COLUMN card BIGINT NOT NULL DEFAULT 0;
-- The claim skips a message while an older one of its thread is pending.
CREATE INDEX outbox_thread ON outbox (channel, thread_ts);
CREATE INDEX outbox_incident ON outbox (incident_id);
CREATE INDEX outbox_request ON outbox (request_id);
-- Set just before a send: a row claimed with it set may have reached Slack (the sender died,
-- its bookkeeping failed, or an attempt timed out), so Slack is asked before a re-send.
ALTER TABLE outbox ADD COLUMN sending BIGINT NOT NULL DEFAULT 0;
