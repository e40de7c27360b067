-- Alert storms (domain::storm). A storm is an incident whose root is a summary: `storm`
-- holds its own id there, and a member's storm id in each member. A member posts nothing
-- of its own until it gets its own thread (`detached_at_ms`, on demand or acknowledged).
ALTER TABLE incidents ADD COLUMN storm TEXT;
ALTER TABLE incidents ADD COLUMN detached_at_ms BIGINT;
CREATE INDEX incidents_storm ON incidents (storm);
CREATE INDEX incidents_opened_at ON incidents (opened_at_ms);
