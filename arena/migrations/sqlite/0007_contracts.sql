-- Three-party transaction contracts and the metered use of real-data runs (SQLite). The
-- PostgreSQL twin is migrations/postgres/0007_contracts.sql; keep them in step.

-- A contract over one competition's use of some of its datasets. `terms` is the canonical
-- JSON the parties accept (by its SHA-256); it never changes once proposed. `team_id` NULL:
-- an open offer to every admitted team, each covered from its own acceptance.
CREATE TABLE contracts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    competition_id   INTEGER NOT NULL REFERENCES competitions (id),
    team_id          INTEGER REFERENCES organizations (id),
    terms            TEXT    NOT NULL,
    terms_sha256     TEXT    NOT NULL,
    required_parties TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('proposed', 'active', 'suspended', 'terminated', 'expired', 'fulfilled')),
    valid_from       INTEGER NOT NULL,
    valid_until      INTEGER NOT NULL,
    suspended_by     TEXT,
    state_reason     TEXT,
    proposed_by      INTEGER NOT NULL REFERENCES accounts (id),
    proposed_at      INTEGER NOT NULL,
    state_changed_at INTEGER NOT NULL
);
CREATE INDEX contracts_by_competition ON contracts (competition_id, state);

-- The datasets a contract covers (what the run gate looks up).
CREATE TABLE contract_datasets (
    contract_id INTEGER NOT NULL REFERENCES contracts (id),
    dataset_id  INTEGER NOT NULL REFERENCES datasets (id),
    PRIMARY KEY (contract_id, dataset_id)
);

-- One party's acceptance (`party`: platform, hospital:N, team:N, auditor:N).
CREATE TABLE contract_acceptances (
    contract_id  INTEGER NOT NULL REFERENCES contracts (id),
    party        TEXT    NOT NULL,
    accepted_by  INTEGER NOT NULL REFERENCES accounts (id),
    accepted_at  INTEGER NOT NULL,
    terms_sha256 TEXT    NOT NULL,
    PRIMARY KEY (contract_id, party)
);

-- The contract under which a real-data run was queued, per dataset: fixed when its ε is
-- reserved, checked again when it starts (a suspended or ended contract stops it).
CREATE TABLE run_contracts (
    job_id      INTEGER NOT NULL REFERENCES jobs (id),
    dataset_id  INTEGER NOT NULL REFERENCES datasets (id),
    contract_id INTEGER NOT NULL REFERENCES contracts (id),
    PRIMARY KEY (job_id, dataset_id)
);

-- The metered use of one real-data run on one dataset, under the contract that covered it.
-- What every party sees (and the ledger holds): the run, ε charged, the CPU-seconds billed
-- (the compute the run's declared limits reserve: public parameters) and the amount. The
-- measured figures (CPU time and peak memory of the sandbox children, rows read) are the
-- operators': the time a run takes on hidden rows is a channel a submission controls.
CREATE TABLE run_usage (
    job_id              INTEGER NOT NULL REFERENCES jobs (id),
    dataset_id          INTEGER NOT NULL REFERENCES datasets (id),
    contract_id         INTEGER NOT NULL REFERENCES contracts (id),
    competition_id      INTEGER NOT NULL REFERENCES competitions (id),
    team_id             INTEGER NOT NULL REFERENCES organizations (id),
    submission_id       INTEGER NOT NULL REFERENCES submissions (id),
    cpu_seconds_billed  INTEGER NOT NULL,
    micro_epsilon       INTEGER NOT NULL,
    amount              TEXT    NOT NULL,
    currency            TEXT    NOT NULL,
    cpu_millis_measured INTEGER,
    peak_memory_bytes   INTEGER,
    rows_read           INTEGER NOT NULL,
    metered_at          INTEGER NOT NULL,
    PRIMARY KEY (job_id, dataset_id)
);
CREATE INDEX run_usage_by_contract ON run_usage (contract_id, metered_at);
