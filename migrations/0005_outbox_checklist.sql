-- Checklists go through the outbox too, so a post-incident checklist keeps its place after
-- the "resolved" timeline in the thread; once posted, its ts is recorded on the checklist.
ALTER TABLE outbox ADD COLUMN checklist_id TEXT;
