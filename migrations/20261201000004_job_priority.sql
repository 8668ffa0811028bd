-- Reads that only look for news nobody has announced (the periodic polls of
-- Testing Farm requests and Koji tasks, which store::periodic enqueues with
-- priority 1) wait behind every other job of their queue. When many requests
-- are outstanding, a polling pass enqueues thousands of reads at once; in one
-- first-come queue, the builds and tests decided after it waited until all
-- of them were done.
ALTER TABLE jobs ADD COLUMN priority SMALLINT NOT NULL DEFAULT 0;

DROP INDEX jobs_ready;
CREATE INDEX jobs_ready ON jobs (queue, priority, run_at, id) WHERE state = 'pending';
