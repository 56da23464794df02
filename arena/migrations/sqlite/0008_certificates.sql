-- Certificates the platform signed (SQLite). The PostgreSQL twin is
-- migrations/postgres/0008_certificates.sql; keep them in step.

-- One row per certificate, kept exactly as signed: `body_json` is the body's canonical
-- bytes, `signature` the signed note over its SHA-256. The serial (`reg-<dataset>`,
-- `res-<competition>-<submission>`) makes issuing idempotent. The anchoring ledger entry is
-- the audit event `certificate_issued` with subject `certificate:<serial>`.
CREATE TABLE certificates (
    serial         TEXT    PRIMARY KEY,
    kind           TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    dataset_id     INTEGER REFERENCES datasets (id),
    competition_id INTEGER REFERENCES competitions (id),
    body_json      TEXT    NOT NULL,
    body_sha256    TEXT    NOT NULL,
    signature      TEXT    NOT NULL,
    issued_at      INTEGER NOT NULL
);
CREATE INDEX certificates_by_competition ON certificates (competition_id, serial);
