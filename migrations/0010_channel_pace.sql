-- Slack's per-channel pacing, shared by the replicas: the time each channel's next
-- message is due on its schedule (slack::limiter's rule, kept in the store). A replica
-- reserves a slot here after its own line picked the message, so two replicas together
-- stay within the channel's rate.
CREATE TABLE channel_pace (
    channel TEXT PRIMARY KEY,
    due_at_ms BIGINT NOT NULL
);
