-- The per-hospital view of final entries (PostgreSQL twin of
-- migrations/sqlite/0004_site_scores.sql).

CREATE TABLE site_score_releases (
    submission_id  BIGINT           NOT NULL REFERENCES submissions (id),
    hospital_id    BIGINT           NOT NULL REFERENCES organizations (id),
    released_score DOUBLE PRECISION NOT NULL,
    epsilon        DOUBLE PRECISION NOT NULL CHECK (epsilon > 0),
    PRIMARY KEY (submission_id, hospital_id)
);
CREATE INDEX site_score_releases_by_hospital ON site_score_releases (hospital_id);
