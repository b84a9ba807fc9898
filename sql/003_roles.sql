-- Group roles (NOLOGIN): grant them to the login roles that the daemon, the inbox and the
-- auditors use, e.g. CREATE ROLE herinnerd LOGIN IN ROLE herinnerd_daemon.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['herinnerd_daemon', 'herinnerd_auditor', 'herinnerd_inbox'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END $$;

GRANT USAGE ON SCHEMA herinnerd TO herinnerd_daemon, herinnerd_auditor, herinnerd_inbox;

-- The daemon reads the inbox, keeps its own progress, and may only ever add attempts.
GRANT SELECT ON herinnerd.messages, herinnerd.recipients, herinnerd.schema_version TO herinnerd_daemon;
GRANT SELECT, INSERT, UPDATE ON herinnerd.escalations TO herinnerd_daemon;
GRANT SELECT, INSERT ON herinnerd.attempts TO herinnerd_daemon;

-- Auditors look, never touch.
GRANT SELECT ON ALL TABLES IN SCHEMA herinnerd TO herinnerd_auditor;

-- The inbox writes messages and recipients (and marks messages read).
GRANT SELECT, INSERT, UPDATE ON herinnerd.messages, herinnerd.recipients TO herinnerd_inbox;
GRANT SELECT ON herinnerd.escalations, herinnerd.attempts TO herinnerd_inbox;

INSERT INTO herinnerd.schema_version (version) VALUES (3);
