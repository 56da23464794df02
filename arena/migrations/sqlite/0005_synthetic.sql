-- Differentially private synthetic development data (SQLite). The PostgreSQL twin is
-- migrations/postgres/0005_synthetic.sql; keep them in step.

-- One hospital's synthetic release of its rows of a dataset. Its ε is spent when it is
-- measured (a draft the hospital then publishes or discards); every row here counts against
-- the dataset's caps, whatever its state. `measurements` is the DP release itself (JSON,
-- floats exact): synthetic rows are regenerated from it and a seed.
CREATE TABLE synthetic_releases (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id          INTEGER NOT NULL REFERENCES datasets (id),
    hospital_id         INTEGER NOT NULL REFERENCES organizations (id),
    state               TEXT    NOT NULL CHECK (state IN ('draft', 'published', 'discarded', 'withdrawn')),
    micro_epsilon       INTEGER NOT NULL CHECK (micro_epsilon > 0),
    delta               REAL    NOT NULL,
    rho                 REAL    NOT NULL,
    synthesizer         TEXT    NOT NULL,
    measurements        TEXT    NOT NULL,
    measurements_sha256 TEXT    NOT NULL,
    quality             TEXT    NOT NULL,
    created_by          INTEGER NOT NULL REFERENCES accounts (id),
    created_at          INTEGER NOT NULL,
    published_at        INTEGER
);
CREATE INDEX synthetic_releases_by_dataset ON synthetic_releases (dataset_id, hospital_id);
