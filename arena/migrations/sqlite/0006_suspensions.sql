-- A contributing hospital's suspension of the use of a dataset (SQLite). The PostgreSQL
-- twin is migrations/postgres/0006_suspensions.sql; keep them in step.

-- While a row exists, no real-data run of any competition reads the dataset: none is
-- queued, and one already queued ends when it would start. Resuming deletes the row.
CREATE TABLE dataset_suspensions (
    dataset_id   INTEGER NOT NULL REFERENCES datasets (id),
    hospital_id  INTEGER NOT NULL REFERENCES organizations (id),
    reason       TEXT    NOT NULL,
    suspended_by INTEGER NOT NULL REFERENCES accounts (id),
    suspended_at INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, hospital_id)
);
