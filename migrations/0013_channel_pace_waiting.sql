-- The most urgent message some replica has waiting for the channel (domain::outbox::
-- Priority's rank) and until when that holds: the other replicas leave the channel's
-- slots to it, so a page in one replica is not outrun by another replica's backlog.
ALTER TABLE channel_pace ADD COLUMN waiting_rank BIGINT;
ALTER TABLE channel_pace ADD COLUMN waiting_until_ms BIGINT;
