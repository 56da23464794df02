-- The pipeline's additions (PostgreSQL twin of migrations/sqlite/0002_pipeline.sql).

ALTER TABLE submissions ADD COLUMN kind TEXT NOT NULL DEFAULT 'model'
    CHECK (kind IN ('model', 'analysis'));
ALTER TABLE submissions ADD COLUMN analysis_json TEXT;
ALTER TABLE submissions ADD COLUMN released_json TEXT;

CREATE TABLE release_states (
    competition_id BIGINT NOT NULL REFERENCES competitions (id),
    team_id        BIGINT NOT NULL REFERENCES organizations (id),
    state_json     TEXT   NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (competition_id, team_id)
);
