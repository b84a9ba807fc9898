-- Every configuration a daemon has run with, by SHA-256: escalations are frozen under one
-- (escalations.config_sha256), attempts say which one decided them (attempts.config_sha256).
-- Auditors can read the exact text; a restarted daemon finishes running escalations with the
-- policy they started with, even when the file has changed since.
CREATE TABLE herinnerd.configs (
    sha256          text PRIMARY KEY,
    body            text NOT NULL,
    first_loaded_by text NOT NULL,
    first_loaded_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT ON herinnerd.configs TO herinnerd_daemon;
GRANT SELECT ON herinnerd.configs TO herinnerd_auditor;

INSERT INTO herinnerd.schema_version (version) VALUES (5);
