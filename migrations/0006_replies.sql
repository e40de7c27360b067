-- Replies to slash commands and clicks, waiting to go through their response_url: the
-- worker that answered only queues them, so a slow or failing Slack never holds it, and a
-- reply survives a failed attempt or a crash. Claimed by one replica with a lease like the
-- outbox; a reply leaves once Slack took it, refused it, or its URL's 30 minutes are over.
CREATE TABLE replies (
    id TEXT PRIMARY KEY,
    response_url TEXT NOT NULL,
    -- The domain's Message, as JSON; rendered when sent.
    message TEXT NOT NULL,
    replace_original BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    -- When Slack issued the URL (the event's receipt): its life counts from there.
    issued_at_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    due_at_ms BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_until_ms BIGINT
);
CREATE INDEX replies_due ON replies (due_at_ms);
