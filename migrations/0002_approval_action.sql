-- The typed action an approval request approves (runbook::stored form), so execution never
-- parses the requester's `/odor` text again. Requests from before this column have none
-- and are refused at execution.
ALTER TABLE approvals ADD COLUMN action TEXT;

-- After a change succeeded: whether the service came back healthy (domain::approval::
-- Verification's text form), shown on the card.
ALTER TABLE approvals ADD COLUMN verification TEXT;
