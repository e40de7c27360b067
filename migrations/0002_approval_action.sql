-- The typed action an approval request approves (runbook::stored form), so execution never
-- parses the requester's `/odor` text again. Requests from before this column have none
-- and are refused at execution.
ALTER TABLE approvals ADD COLUMN action TEXT;
