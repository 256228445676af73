-- specbot job store, SQLite. Timestamps are Unix milliseconds chosen by the caller, never DB time.
-- Kept in step with ../postgres/0001_init.sql.

CREATE TABLE IF NOT EXISTS deliveries (
    id              TEXT PRIMARY KEY NOT NULL,  -- X-GitHub-Delivery
    event           TEXT NOT NULL,
    action          TEXT,
    installation_id INTEGER,
    repository      TEXT,
    body            BLOB NOT NULL,              -- the raw bytes GitHub sent
    received_at     INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    state            TEXT NOT NULL
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    dedupe_key       TEXT,
    -- = dedupe_key while the job is queued or running, NULL otherwise: the unique index below
    -- is what keeps two jobs with one key from being active at once.
    active_key       TEXT,
    payload          TEXT NOT NULL,             -- JSON
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_until      INTEGER,
    checkpoint       TEXT NOT NULL DEFAULT 'null', -- JSON
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    delivery_id      TEXT REFERENCES deliveries (id) ON DELETE SET NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CHECK (active_key IS NULL OR (active_key = dedupe_key AND state IN ('queued', 'running')))
);

CREATE UNIQUE INDEX IF NOT EXISTS jobs_active_key ON jobs (active_key);
-- Claiming: queued jobs by run_at, id; running jobs by lease expiry.
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (state, run_at, id);
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (state, lease_until);
CREATE INDEX IF NOT EXISTS jobs_delivery ON jobs (delivery_id);

CREATE TABLE IF NOT EXISTS records (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,                   -- JSON
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
);

CREATE TABLE IF NOT EXISTS llm_usage (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id             INTEGER NOT NULL,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    input_tokens       INTEGER NOT NULL,
    output_tokens      INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_usd           REAL NOT NULL,
    created_at         INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS llm_usage_job ON llm_usage (job_id);
