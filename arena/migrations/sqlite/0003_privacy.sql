-- Privacy that holds end to end (SQLite). The PostgreSQL twin is
-- migrations/postgres/0003_privacy.sql; keep them in step.

-- Privacy charges in whole micro-ε (exact sums), kept per (team, dataset) across every
-- competition. A real run's ε is reserved when the run is queued (a fixed amount at a time
-- that does not depend on the data), together with the final release's the first time.
CREATE TABLE privacy_charges (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id        INTEGER NOT NULL REFERENCES organizations (id),
    dataset_id     INTEGER NOT NULL REFERENCES datasets (id),
    competition_id INTEGER NOT NULL REFERENCES competitions (id),
    submission_id  INTEGER REFERENCES submissions (id),
    job_id         INTEGER REFERENCES jobs (id),
    purpose        TEXT    NOT NULL CHECK (purpose IN ('public_score', 'final_score', 'analysis')),
    micro_epsilon  INTEGER NOT NULL CHECK (micro_epsilon >= 0),
    charged_at     INTEGER NOT NULL
);
CREATE INDEX privacy_charges_by_team ON privacy_charges (team_id, dataset_id);
CREATE INDEX privacy_charges_by_dataset ON privacy_charges (dataset_id);
CREATE INDEX privacy_charges_by_competition ON privacy_charges (competition_id, team_id);

-- Charges of the first platform (floats per competition) carried over, rounded up.
INSERT INTO privacy_charges (team_id, dataset_id, competition_id, job_id, purpose,
                             micro_epsilon, charged_at)
    SELECT team_id, dataset_id, competition_id, job_id, 'public_score',
           CAST(epsilon * 1000000 + 0.999999 AS INTEGER), charged_at
    FROM budget_charges;
DROP TABLE budget_charges;

-- What each contributing hospital allows for a dataset; the strictest applies. A hospital
-- without a row gets the platform's defaults (row level only, 10 ε per team, 100 ε in all).
CREATE TABLE dataset_privacy_terms (
    dataset_id     INTEGER NOT NULL REFERENCES datasets (id),
    hospital_id    INTEGER NOT NULL REFERENCES organizations (id),
    min_level      TEXT    NOT NULL CHECK (min_level IN ('row', 'label')),
    per_team_micro INTEGER NOT NULL CHECK (per_team_micro >= 0),
    total_micro    INTEGER NOT NULL CHECK (total_micro >= 0),
    updated_by     INTEGER NOT NULL REFERENCES accounts (id),
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, hospital_id)
);

-- When a real run's result becomes visible to anyone but organizers (fixed at queueing),
-- and the private score as released at publication.
ALTER TABLE submissions ADD COLUMN release_at INTEGER;
ALTER TABLE submissions ADD COLUMN released_private_score REAL;
CREATE INDEX audit_by_time ON audit_events (delivered_at, at, id);

-- Fair-scheduling turns per kind of job: dummy runs take turns among themselves, real runs
-- among themselves, so that the order of dummy runs never follows real runs' durations.
CREATE TABLE queue_turns_by_kind (
    team_id   INTEGER NOT NULL REFERENCES organizations (id),
    kind      TEXT    NOT NULL CHECK (kind IN ('dummy_run', 'real_run')),
    last_turn INTEGER NOT NULL,
    PRIMARY KEY (team_id, kind)
);
INSERT INTO queue_turns_by_kind (team_id, kind, last_turn)
    SELECT team_id, 'dummy_run', last_turn FROM queue_turns;
INSERT INTO queue_turns_by_kind (team_id, kind, last_turn)
    SELECT team_id, 'real_run', last_turn FROM queue_turns;
DROP TABLE queue_turns;
ALTER TABLE queue_turns_by_kind RENAME TO queue_turns;

-- The secret salt of the public ledger's commitments to an upload and its report (the
-- ledger no longer names a file's digest or size). Uploads of the first platform have none.
ALTER TABLE contributions ADD COLUMN commitment_salt TEXT;
