-- Serving processes, so that the jobs of one that died are taken over at once rather than when
-- their leases run out. Each `specbot serve` registers its name (the lease owner of its workers
-- is "<name>/<worker>") and, while it lives, holds the session advisory lock
-- (1397769539, id) on a connection of its own. A running job whose owner is registered and whose
-- lock is free belongs to a dead process: any worker may claim it. An owner that is not
-- registered (a version before this one) keeps its jobs until their leases run out.
CREATE TABLE IF NOT EXISTS instances (
    id         SERIAL PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    started_at BIGINT NOT NULL
);
