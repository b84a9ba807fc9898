-- One notice per person (a policy's `bundle`): a claimed step looks for the same recipient's
-- other unread messages whose steps on the same channel fall due soon. This finds them without
-- reading every unread message.
CREATE INDEX messages_unread_recipient ON herinnerd.messages (recipient_id) WHERE read_at IS NULL;

-- One letter naming several messages is written (and named in the spool) for the message that
-- leads it; each other message it names has its own row pointing there, so that "one letter per
-- (message, step)" still holds for every one of them. Its state follows the leader's letter.
ALTER TABLE herinnerd.letters ADD COLUMN leader bigint, ADD COLUMN leader_step int;
CREATE INDEX letters_leader ON herinnerd.letters (leader, leader_step) WHERE leader IS NOT NULL;

INSERT INTO herinnerd.schema_version (version) VALUES (12);
