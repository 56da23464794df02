-- The per-hospital view of final entries (SQLite). The PostgreSQL twin is
-- migrations/postgres/0004_site_scores.sql; keep them in step.

-- At publication, each final entry's score on one contributing hospital's private rows,
-- released with noise (its ε is part of the final reservation). Only that hospital and
-- organizers read it; the ledger records the release and its ε, not the value.
CREATE TABLE site_score_releases (
    submission_id  INTEGER NOT NULL REFERENCES submissions (id),
    hospital_id    INTEGER NOT NULL REFERENCES organizations (id),
    released_score REAL    NOT NULL,
    epsilon        REAL    NOT NULL CHECK (epsilon > 0),
    PRIMARY KEY (submission_id, hospital_id)
);
CREATE INDEX site_score_releases_by_hospital ON site_score_releases (hospital_id);
