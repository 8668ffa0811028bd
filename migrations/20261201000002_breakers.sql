-- The state of each job runner's circuit breaker per queue, as the runners
-- last saw it: the status page shows which services are paused, whichever
-- process runs the jobs.
CREATE TABLE breakers (
    queue       TEXT        NOT NULL,
    runner      TEXT        NOT NULL,
    state       TEXT        NOT NULL CHECK (state IN ('closed', 'open', 'half-open')),
    -- While open: when the next probe goes.
    until       TIMESTAMPTZ,
    failures    INTEGER     NOT NULL DEFAULT 0,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, runner)
);
