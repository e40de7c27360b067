-- Evidence kept for an incident (`collect_evidence`, `/odor evidence`): each item whole, with
-- the SHA-256 of its UTF-8 bytes. A collection (one guided step of one run) is written all at
-- once; writing it again after a crash keeps the first copy, so an item is never doubled or
-- replaced.
CREATE TABLE evidence (
    incident_id TEXT NOT NULL,
    collection TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    content TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    truncated BIGINT NOT NULL,
    collected_at_ms BIGINT NOT NULL,
    collected_by TEXT NOT NULL,
    PRIMARY KEY (collection, name)
);
CREATE INDEX evidence_incident ON evidence (incident_id, collected_at_ms);
