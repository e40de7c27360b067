-- A message for an incident's thread queued before the thread's root message existed: the
-- sender finds the thread through the incident when it sends, and waits for it meanwhile.
ALTER TABLE outbox ADD COLUMN incident_id TEXT;
