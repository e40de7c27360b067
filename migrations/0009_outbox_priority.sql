-- What a queued message is (domain::outbox::Priority's rank: 0 page, 1 status update,
-- 2 routine, 3 findings): the sender claims the lowest rank first, in thread order.
ALTER TABLE outbox ADD COLUMN priority BIGINT NOT NULL DEFAULT 2;
CREATE INDEX outbox_priority ON outbox (priority, id);
