-- The paper channel: one letter per (message, step), arbitrated by the database (DESIGN.md §5).
-- An instance claims a letter here ('writing') before it renders it into the spool; the file's
-- later moves (queued -> handed-over | withdrawn) follow the spool (DESIGN.md §8).
CREATE TABLE herinnerd.letters (
    message_id bigint NOT NULL REFERENCES herinnerd.messages(id),
    step       int NOT NULL,
    instance   text NOT NULL,                    -- who writes (wrote) it
    state      text NOT NULL
               CHECK (state IN ('writing', 'queued', 'handed-over', 'withdrawn')),
    file       text,                             -- where it is in the spool, once written
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, step)
);
-- reading a message looks for its letters still waiting for the cut-off
CREATE INDEX letters_queued ON herinnerd.letters (message_id) WHERE state = 'queued';

-- A letter is queued, handed over and withdrawn at most once: never two such attempt rows,
-- whatever instance, crash or replay records them.
CREATE UNIQUE INDEX attempts_paper_once ON herinnerd.attempts (message_id, step, outcome)
    WHERE channel = 'paper' AND outcome IN ('queued', 'handed-over', 'withdrawn');

GRANT SELECT, INSERT, UPDATE ON herinnerd.letters TO herinnerd_daemon;
GRANT SELECT ON herinnerd.letters TO herinnerd_auditor, herinnerd_inbox;

INSERT INTO herinnerd.schema_version (version) VALUES (4);
