-- Scale-out. Wrong passwords per e-mail address: sign-in throttling that every web server of a
-- deployment shares (behind a load balancer each would otherwise count on its own).
CREATE TABLE sign_in_failures (
    email           TEXT   PRIMARY KEY,
    failures        BIGINT NOT NULL,
    first_failed_at BIGINT NOT NULL
);
CREATE INDEX sign_in_failures_by_time ON sign_in_failures (first_failed_at);

-- A claim looks up each team's oldest waiting job of a kind: an index walk per team, so
-- that a claim costs the same with 100 or 100,000 jobs queued. Ordered by creation time
-- (then id), which no other index provides: ordered by id alone, PostgreSQL's planner
-- walks the primary key instead, past every finished job (4.5 ms a claim, growing with
-- the table's history, against 0.65 ms).
CREATE INDEX jobs_claim_order ON jobs (team_id, kind, state, created_at, id);
-- Every claim first asks whether any running job's lease has expired: only running jobs
-- are indexed, by lease end.
CREATE INDEX jobs_running_by_lease ON jobs (lease_expires_at) WHERE state = 'running';
