-- Jobs with one serial_key run one at a time, oldest first (e.g. every job that writes one
-- spec's branch); claim skips a job while an older one with its key is queued or running.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS serial_key TEXT;
CREATE INDEX IF NOT EXISTS jobs_serial ON jobs (serial_key, id) WHERE serial_key IS NOT NULL;
