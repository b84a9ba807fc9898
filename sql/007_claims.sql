-- Fenced claims (DESIGN.md §5). A claim is a token unique to one claim of one process; only the
-- holder of the current token moves an escalation, and a claim whose outcome was never recorded
-- becomes an `in-doubt` attempt before the step is tried again.
--   escalations.claim        the current claim token (NULL: nobody holds it)
--   escalations.lease_owner  only a label for people now (the holder's `instance`)
--   escalations.channel      the channel of the step due: claims take per channel only what
--                            the channel has room for
--   escalations.next_at      while claimed: the lease's end, so "next due" is one index lookup
--   letters.claim            the claim writing the letter; another claim takes a 'writing'
--                            letter over only once that claim has lost the escalation

ALTER TABLE herinnerd.escalations
    ADD COLUMN claim text,
    ADD COLUMN channel text NOT NULL DEFAULT '';

-- leases taken before fencing existed: they run out as before, and become in-doubt then
UPDATE herinnerd.escalations
   SET claim = 'legacy:' || coalesce(lease_owner, '?'),
       next_at = greatest(next_at, lease_until)
 WHERE state = 'active' AND lease_until IS NOT NULL;

DROP INDEX herinnerd.escalations_due;
CREATE INDEX escalations_due ON herinnerd.escalations (channel, next_at) WHERE state = 'active';
CREATE INDEX escalations_next ON herinnerd.escalations (next_at) WHERE state = 'active';
CREATE INDEX escalations_claim ON herinnerd.escalations (claim) WHERE claim IS NOT NULL;

ALTER TABLE herinnerd.letters ADD COLUMN claim text;

-- delivery reports and follow-ups find the send they refer to
CREATE INDEX attempts_external ON herinnerd.attempts (external_id) WHERE external_id IS NOT NULL;

INSERT INTO herinnerd.schema_version (version) VALUES (7);
