-- Certificates the platform signed (PostgreSQL twin of
-- migrations/sqlite/0008_certificates.sql).

CREATE TABLE certificates (
    serial         TEXT   PRIMARY KEY,
    kind           TEXT   NOT NULL,
    subject        TEXT   NOT NULL,
    dataset_id     BIGINT REFERENCES datasets (id),
    competition_id BIGINT REFERENCES competitions (id),
    body_json      TEXT   NOT NULL,
    body_sha256    TEXT   NOT NULL,
    signature      TEXT   NOT NULL,
    issued_at      BIGINT NOT NULL
);
CREATE INDEX certificates_by_competition ON certificates (competition_id, serial);
