-- When the first pending flag an event asked for was set on its pull request: the
-- fedora_ci_first_initial_status_time histogram (Packit Service's metric) observes, once per
-- event, the time from the event's message to that flag. The job that sets the flag claims
-- the event by setting this, so that jobs running at once, retries and replicas count it once.
ALTER TABLE events ADD COLUMN initial_status_at TIMESTAMPTZ;
