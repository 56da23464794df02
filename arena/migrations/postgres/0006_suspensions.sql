-- A contributing hospital's suspension of the use of a dataset (PostgreSQL twin of
-- migrations/sqlite/0006_suspensions.sql).

CREATE TABLE dataset_suspensions (
    dataset_id   BIGINT NOT NULL REFERENCES datasets (id),
    hospital_id  BIGINT NOT NULL REFERENCES organizations (id),
    reason       TEXT   NOT NULL,
    suspended_by BIGINT NOT NULL REFERENCES accounts (id),
    suspended_at BIGINT NOT NULL,
    PRIMARY KEY (dataset_id, hospital_id)
);
