-- One notice per person (a policy's `bundle`): a claimed step looks for the same recipient's
-- other unread messages whose steps on the same channel fall due soon. This finds them without
-- reading every unread message.
CREATE INDEX messages_unread_recipient ON herinnerd.messages (recipient_id) WHERE read_at IS NULL;

INSERT INTO herinnerd.schema_version (version) VALUES (11);
