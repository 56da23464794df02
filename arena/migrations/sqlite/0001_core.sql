-- medarena core schema (SQLite). Timestamps are milliseconds since the Unix epoch (UTC).
-- States are snake_case text matching the Rust enums. The PostgreSQL twin of this file is
-- migrations/postgres/0001_core.sql; keep them in step.

CREATE TABLE organizations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL CHECK (kind IN ('hospital', 'team')),
    name         TEXT    NOT NULL UNIQUE,
    statement    TEXT    NOT NULL,
    admission    TEXT    NOT NULL CHECK (admission IN ('pending', 'approved', 'rejected')),
    tier         TEXT    CHECK (tier IN ('dummy_only', 'real_data', 'dp_aggregates')),
    applied_by   INTEGER NOT NULL REFERENCES accounts (id),
    reviewed_by  INTEGER REFERENCES accounts (id),
    reviewed_at  INTEGER,
    review_note  TEXT,
    created_at   INTEGER NOT NULL
);

CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('organizer', 'hospital', 'team_member', 'auditor')),
    password_hash TEXT    NOT NULL,
    org_id        INTEGER REFERENCES organizations (id),
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);
CREATE INDEX accounts_by_org ON accounts (org_id);

CREATE TABLE credentials (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES accounts (id),
    kind         TEXT    NOT NULL CHECK (kind IN ('session', 'api_token')),
    name         TEXT    NOT NULL,
    token_hash   BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX credentials_by_account ON credentials (account_id);

CREATE TABLE datasets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    slug        TEXT    NOT NULL UNIQUE,
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('uploaded', 'validated', 'rejected', 'approved')),
    created_by  INTEGER NOT NULL REFERENCES accounts (id),
    created_at  INTEGER NOT NULL,
    reviewed_by INTEGER REFERENCES accounts (id),
    reviewed_at INTEGER,
    review_note TEXT
);

CREATE TABLE contributions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id     INTEGER NOT NULL REFERENCES datasets (id),
    hospital_id    INTEGER NOT NULL REFERENCES organizations (id),
    uploaded_by    INTEGER NOT NULL REFERENCES accounts (id),
    file_name      TEXT    NOT NULL,
    manifest       TEXT,
    object_id      TEXT,
    content_sha256 TEXT    NOT NULL,
    size_bytes     INTEGER NOT NULL,
    row_count      INTEGER,
    state          TEXT    NOT NULL CHECK (state IN ('uploaded', 'validated', 'rejected')),
    report_json    TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX contributions_by_dataset ON contributions (dataset_id);

-- Per-scope data keys, wrapped by the master key.
CREATE TABLE data_keys (
    scope       TEXT    PRIMARY KEY,
    wrapped_key BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE competitions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    slug          TEXT    NOT NULL UNIQUE,
    title         TEXT    NOT NULL,
    bundle_yaml   TEXT    NOT NULL,
    bundle_json   TEXT    NOT NULL,
    bundle_sha256 TEXT    NOT NULL,
    created_by    INTEGER NOT NULL REFERENCES accounts (id),
    created_at    INTEGER NOT NULL,
    closed_at     INTEGER,
    published_at  INTEGER
);

CREATE TABLE competition_datasets (
    competition_id INTEGER NOT NULL REFERENCES competitions (id),
    dataset_id     INTEGER NOT NULL REFERENCES datasets (id),
    position       INTEGER NOT NULL,
    PRIMARY KEY (competition_id, dataset_id)
);

CREATE TABLE agreement_acceptances (
    competition_id   INTEGER NOT NULL REFERENCES competitions (id),
    team_id          INTEGER NOT NULL REFERENCES organizations (id),
    accepted_by      INTEGER NOT NULL REFERENCES accounts (id),
    agreement_sha256 TEXT    NOT NULL,
    accepted_at      INTEGER NOT NULL,
    PRIMARY KEY (competition_id, team_id)
);

CREATE TABLE submissions (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    competition_id        INTEGER NOT NULL REFERENCES competitions (id),
    team_id               INTEGER NOT NULL REFERENCES organizations (id),
    submitted_by          INTEGER NOT NULL REFERENCES accounts (id),
    phase                 TEXT    NOT NULL,
    object_id             TEXT    NOT NULL,
    module_sha256         TEXT    NOT NULL,
    size_bytes            INTEGER NOT NULL,
    utc_day               INTEGER NOT NULL,
    status                TEXT    NOT NULL CHECK (status IN ('queued_dummy', 'running_dummy', 'queued_real',
                                                             'running_real', 'completed', 'failed')),
    outcome               TEXT    CHECK (outcome IN ('ok', 'failed', 'over_limit', 'error')),
    note                  TEXT,
    dummy_score           REAL,
    released_public_score REAL,
    exact_public_score    REAL,
    private_score         REAL,
    result_json           TEXT,
    created_at            INTEGER NOT NULL,
    finished_at           INTEGER
);
CREATE INDEX submissions_by_team_day ON submissions (competition_id, team_id, utc_day);

-- The durable job queue. A claim sets state 'running' with a lease; a lease that expires
-- without a heartbeat sends the job back to 'pending' (or 'failed' after max_attempts).
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id    INTEGER NOT NULL REFERENCES submissions (id),
    competition_id   INTEGER NOT NULL REFERENCES competitions (id),
    team_id          INTEGER NOT NULL REFERENCES organizations (id),
    kind             TEXT    NOT NULL CHECK (kind IN ('dummy_run', 'real_run')),
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    available_at     INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_token      TEXT,
    lease_expires_at INTEGER,
    outcome          TEXT    CHECK (outcome IN ('ok', 'failed', 'over_limit', 'error')),
    result_json      TEXT,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    UNIQUE (submission_id, kind)
);
CREATE INDEX jobs_by_state ON jobs (state, available_at);
CREATE INDEX jobs_by_team_state ON jobs (team_id, state);

-- Round-robin across teams: the team served longest ago goes first.
CREATE TABLE queue_turns (
    team_id   INTEGER PRIMARY KEY REFERENCES organizations (id),
    last_turn INTEGER NOT NULL
);

CREATE TABLE budget_charges (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    competition_id INTEGER NOT NULL REFERENCES competitions (id),
    team_id        INTEGER NOT NULL REFERENCES organizations (id),
    dataset_id     INTEGER NOT NULL REFERENCES datasets (id),
    job_id         INTEGER NOT NULL REFERENCES jobs (id),
    epsilon        REAL    NOT NULL CHECK (epsilon >= 0),
    charged_at     INTEGER NOT NULL
);
CREATE INDEX budget_by_team ON budget_charges (competition_id, team_id, dataset_id);
CREATE INDEX budget_by_dataset ON budget_charges (dataset_id);

-- Transactional outbox of audit events: written in the same transaction as the change it
-- describes, delivered to the AuditSink (the ledger) afterwards, at least once.
CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor_id     INTEGER,
    kind         TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    payload_json TEXT    NOT NULL,
    delivered_at INTEGER,
    evidence     TEXT
);
CREATE INDEX audit_undelivered ON audit_events (delivered_at, id);
CREATE INDEX audit_by_subject ON audit_events (subject, id);
