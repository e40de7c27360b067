-- Guided procedures (`/odor run`): the run's state is one JSON value (odorbot_core's
-- domain::guide::Run), written by compare-and-set on `version`, so a person's pause and the
-- driver's step never overwrite one another. One replica drives a run at a time: it holds
-- the claim until `claimed_until_ms`, and a dead replica's runs are taken over after it.
CREATE TABLE procedure_runs (
    id TEXT PRIMARY KEY,
    procedure TEXT NOT NULL,
    channel TEXT NOT NULL,
    -- The run's root message, once posted: its thread carries the steps' findings.
    ts TEXT,
    state TEXT NOT NULL,
    body TEXT NOT NULL,
    version BIGINT NOT NULL,
    claimed_by TEXT,
    claimed_until_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX procedure_runs_state ON procedure_runs (state);

-- A run's root message goes through the outbox; once posted its ts is recorded on the run.
ALTER TABLE outbox ADD COLUMN run_id TEXT;
