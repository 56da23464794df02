-- The pipeline's additions (SQLite). The PostgreSQL twin is
-- migrations/postgres/0002_pipeline.sql; keep them in step.

-- A submission is a model (fit / predict, scored) or an analysis (analyze, released as a
-- differentially private aggregate). An analysis carries its declaration (output bounds,
-- epsilon, blocks) and, once released, what its team may see.
ALTER TABLE submissions ADD COLUMN kind TEXT NOT NULL DEFAULT 'model'
    CHECK (kind IN ('model', 'analysis'));
ALTER TABLE submissions ADD COLUMN analysis_json TEXT;
ALTER TABLE submissions ADD COLUMN released_json TEXT;

-- The public-score release state of a team in a competition (the Ladder's best score so
-- far), written in the same transaction as the run that advanced it. Opaque to the core.
CREATE TABLE release_states (
    competition_id INTEGER NOT NULL REFERENCES competitions (id),
    team_id        INTEGER NOT NULL REFERENCES organizations (id),
    state_json     TEXT    NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (competition_id, team_id)
);
