-- Track and trace (DESIGN.md §3, FIELD.md): one message's life as rows that a sender's portal,
-- a help desk (herinnerctl status) and an auditor read the same way, and the bring-forward that
-- failed delivery reports and bounces use to move the ladder on at once.

-- One row per event, in the order of (at, attempt_id):
--   arrived   the inbox stored the message
--   attempt   one attempt row: step, try, channel, outcome, detail, address as recorded
--   read      the citizen read it
-- Every row carries the message (sender, kind, subject, due date) and what happens next:
-- `escalation` is the ladder's state (NULL: not adopted yet; 'sending': a step is being tried
-- now), next_step / next_channel / next_at the step planned and when (NULL unless waiting).
CREATE VIEW herinnerd.message_timeline AS
SELECT t.message_id, m.sender, m.kind, m.subject, m.due_at, t.at, t.event, t.step, t.try,
       t.channel, t.outcome, t.detail, t.address, t.attempt_id, e.policy,
       CASE WHEN e.state = 'active' AND e.claim IS NOT NULL THEN 'sending' ELSE e.state END
           AS escalation,
       CASE WHEN e.state = 'active' THEN e.step END AS next_step,
       CASE WHEN e.state = 'active' THEN nullif(e.channel, '') END AS next_channel,
       CASE WHEN e.state = 'active' AND e.claim IS NULL THEN e.next_at END AS next_at
  FROM (SELECT id AS message_id, created_at AS at, 'arrived'::text AS event, NULL::int AS step,
               NULL::int AS try, NULL::text AS channel, NULL::text AS outcome, NULL::text AS detail,
               NULL::text AS address, NULL::bigint AS attempt_id
          FROM herinnerd.messages
        UNION ALL
        SELECT message_id, created_at, 'attempt', step, try, channel, outcome, detail, address, id
          FROM herinnerd.attempts
        UNION ALL
        SELECT id, read_at, 'read', NULL, NULL, NULL, NULL, NULL, NULL, NULL
          FROM herinnerd.messages WHERE read_at IS NOT NULL) t
  JOIN herinnerd.messages m ON m.id = t.message_id
  LEFT JOIN herinnerd.escalations e ON e.message_id = t.message_id;

-- A sender's portal logs in as a role that is a member of herinnerd_sender, and sees the
-- timeline of its own sender's messages only: the login is mapped to the sender names it may
-- see (one login may serve several, e.g. a shared service centre). The role has no right on
-- the tables themselves; the view reads them with its owner's rights, and security_barrier
-- keeps the filter ahead of any function the portal puts in its WHERE clause.
--   CREATE ROLE portal_sudwest LOGIN IN ROLE herinnerd_sender;
--   INSERT INTO herinnerd.sender_logins VALUES ('portal_sudwest', 'Gemeente Súdwest-Fryslân');
CREATE TABLE herinnerd.sender_logins (
    login  name NOT NULL,
    sender text NOT NULL,
    PRIMARY KEY (login, sender)
);

CREATE VIEW herinnerd.sender_timeline WITH (security_barrier) AS
SELECT * FROM herinnerd.message_timeline
 WHERE sender IN (SELECT s.sender FROM herinnerd.sender_logins s WHERE s.login = current_user);

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'herinnerd_sender') THEN
        CREATE ROLE herinnerd_sender NOLOGIN;
    END IF;
END $$;

GRANT USAGE ON SCHEMA herinnerd TO herinnerd_sender;
GRANT SELECT ON herinnerd.sender_timeline TO herinnerd_sender;
GRANT SELECT ON herinnerd.message_timeline TO herinnerd_auditor, herinnerd_daemon, herinnerd_inbox;
GRANT SELECT ON herinnerd.sender_timeline, herinnerd.sender_logins TO herinnerd_auditor;

-- A failed delivery report or a bounce for step AFTER_STEP of MESSAGE: the step that waits for
-- it (a later one, not claimed by anyone now) becomes due now instead of at its planned time,
-- and the daemons hear of it ('due': a wake-up without payload, like 'new', that makes them
-- look for the next due step again). True when a step moved.
CREATE FUNCTION herinnerd.bring_forward(message bigint, after_step int) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE herinnerd.escalations
       SET next_at = now(), updated_at = now()
     WHERE message_id = message AND state = 'active' AND step > after_step
       AND claim IS NULL AND next_at > now();
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('herinnerd_message', 'due');
    RETURN true;
END $$;

REVOKE ALL ON FUNCTION herinnerd.bring_forward(bigint, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION herinnerd.bring_forward(bigint, int) TO herinnerd_daemon;

INSERT INTO herinnerd.schema_version (version) VALUES (10);
