-- The Fedora CI flows: what the service knows about projects, pull requests,
-- commits and pushes; the pipelines it runs for pull requests, with their Koji
-- builds, Testing Farm runs and flags; the decisions it took for every event;
-- and the jobs that carry the decisions out.

-- Events the service records itself: Testing Farm webhooks, and results of its
-- own look-ups (Testing Farm requests, Koji polls, facts).
ALTER TABLE events DROP CONSTRAINT events_source_check;
ALTER TABLE events ADD CONSTRAINT events_source_check
    CHECK (source IN ('bus', 'replay', 'webhook', 'internal'));

CREATE TABLE projects (
    id          BIGSERIAL PRIMARY KEY,
    -- The project's web URL as messages name it, e.g. https://src.fedoraproject.org/rpms/optee_os.
    url         TEXT        NOT NULL UNIQUE,
    forge       TEXT        NOT NULL,
    namespace   TEXT        NOT NULL,
    repo        TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE pull_requests (
    id             BIGSERIAL PRIMARY KEY,
    project_id     BIGINT      NOT NULL REFERENCES projects,
    number         BIGINT      NOT NULL,
    pagure_uid     TEXT,
    title          TEXT        NOT NULL DEFAULT '',
    author         TEXT        NOT NULL DEFAULT '',
    target_branch  TEXT        NOT NULL,
    source_branch  TEXT        NOT NULL DEFAULT '',
    -- The fork (or the project itself) the commits come from.
    source_url     TEXT        NOT NULL,
    head_sha       TEXT        NOT NULL,
    -- Pagure's last_updated of the message that set head_sha: older messages
    -- (the bus does not keep order) never move the head back.
    head_updated   BIGINT      NOT NULL DEFAULT 0,
    status         TEXT        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'merged')),
    url            TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, number)
);

CREATE TABLE pushes (
    id               BIGSERIAL PRIMARY KEY,
    event_id         BIGINT      NOT NULL UNIQUE REFERENCES events,
    project_id       BIGINT      NOT NULL REFERENCES projects,
    branch           TEXT        NOT NULL,
    old_sha          TEXT,
    new_sha          TEXT        NOT NULL,
    pusher           TEXT,
    forced           BOOLEAN     NOT NULL DEFAULT false,
    total_commits    INTEGER,
    -- The pull request the push merged or updated, when known.
    pull_request_id  BIGINT REFERENCES pull_requests,
    pushed_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX pushes_project_branch ON pushes (project_id, branch, id);
-- A push to a fork's branch is linked to the open pull requests made from it.
CREATE INDEX pull_requests_source ON pull_requests (source_url, source_branch) WHERE status = 'open';

-- Commits we have seen, with the push that brought each one when we saw it.
CREATE TABLE commits (
    id              BIGSERIAL PRIMARY KEY,
    project_id      BIGINT      NOT NULL REFERENCES projects,
    sha             TEXT        NOT NULL,
    push_id         BIGINT REFERENCES pushes,
    pull_request_id BIGINT REFERENCES pull_requests,
    first_seen_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (project_id, sha)
);

-- One pipeline per pull-request head commit: the unit that a newer commit supersedes.
CREATE TABLE pipelines (
    id               BIGSERIAL PRIMARY KEY,
    project_id       BIGINT      NOT NULL REFERENCES projects,
    pull_request_id  BIGINT REFERENCES pull_requests,
    commit_sha       TEXT        NOT NULL,
    origin           TEXT        NOT NULL DEFAULT 'fedora-ci',
    trigger          TEXT        NOT NULL,
    event_id         BIGINT REFERENCES events,
    state            TEXT        NOT NULL DEFAULT 'active'
                     CHECK (state IN ('active', 'superseded', 'closed')),
    superseded_by    TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (pull_request_id, commit_sha)
);

CREATE TABLE koji_builds (
    id             BIGSERIAL PRIMARY KEY,
    pipeline_id    BIGINT REFERENCES pipelines,
    project_id     BIGINT REFERENCES projects,
    origin         TEXT        NOT NULL DEFAULT 'fedora-ci',
    -- What decided this build (e.g. pipeline:12:initial:default, comment:110401:eln):
    -- the same decision taken twice finds its build instead of making another.
    trigger_key    TEXT UNIQUE,
    scratch        BOOLEAN     NOT NULL,
    -- Set once Koji accepted the submission; official builds come with theirs.
    task_id        BIGINT UNIQUE,
    build_id       BIGINT UNIQUE,
    nvr            TEXT,
    target         TEXT        NOT NULL,
    branch         TEXT,
    variant        TEXT        NOT NULL DEFAULT 'default' CHECK (variant IN ('default', 'eln')),
    source_url     TEXT        NOT NULL,
    commit_sha     TEXT,
    -- Our status, as the dashboard shows it.
    status         TEXT        NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'running', 'success', 'failure', 'canceled', 'error')),
    -- The last Koji task state we recorded (FREE, OPEN, CLOSED, ...).
    koji_state     TEXT,
    superseded     BOOLEAN     NOT NULL DEFAULT false,
    submitted_at   TIMESTAMPTZ,
    started_at     TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ,
    -- When a message or poll last told us about the task: polls go to tasks we have not heard of for a while.
    last_heard_at  TIMESTAMPTZ,
    web_url        TEXT,
    -- Per architecture, the build log: {"x86_64": "https://.../build.log"}.
    log_urls       JSONB       NOT NULL DEFAULT '{}'::jsonb,
    error_message  TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX koji_builds_pipeline ON koji_builds (pipeline_id);
CREATE INDEX koji_builds_unfinished ON koji_builds (last_heard_at)
    WHERE status IN ('pending', 'running') AND task_id IS NOT NULL;

CREATE TABLE test_runs (
    id             BIGSERIAL PRIMARY KEY,
    pipeline_id    BIGINT      NOT NULL REFERENCES pipelines,
    koji_build_id  BIGINT REFERENCES koji_builds,
    origin         TEXT        NOT NULL DEFAULT 'fedora-ci',
    test_name      TEXT        NOT NULL,
    trigger_key    TEXT        NOT NULL UNIQUE,
    branch         TEXT        NOT NULL,
    variant        TEXT        NOT NULL DEFAULT 'default' CHECK (variant IN ('default', 'eln')),
    compose        TEXT,
    -- The Testing Farm request exactly as it is (or was) sent, without the webhook token.
    payload        JSONB       NOT NULL,
    request_id     TEXT UNIQUE,
    state          TEXT        NOT NULL DEFAULT 'new'
                   CHECK (state IN ('new', 'queued', 'running', 'complete', 'error', 'canceled')),
    result         TEXT CHECK (result IN ('passed', 'failed', 'skipped', 'unknown', 'error')),
    summary        TEXT,
    artifacts_url  TEXT,
    superseded     BOOLEAN     NOT NULL DEFAULT false,
    -- How many times the request was read: a webhook asks for the next read.
    reads          INTEGER     NOT NULL DEFAULT 0,
    submitted_at   TIMESTAMPTZ,
    started_at     TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX test_runs_pipeline ON test_runs (pipeline_id);
CREATE INDEX test_runs_unfinished ON test_runs (updated_at)
    WHERE state IN ('new', 'queued', 'running') AND request_id IS NOT NULL;

-- The flags we want on pull requests: the desired state, with a version that
-- grows with every change. A set-flag job sends the flag's newest state and
-- records which version it sent, so a late job never puts back an older state.
CREATE TABLE flags (
    id               BIGSERIAL PRIMARY KEY,
    pull_request_id  BIGINT      NOT NULL REFERENCES pull_requests,
    pipeline_id      BIGINT      NOT NULL REFERENCES pipelines,
    commit_sha       TEXT        NOT NULL,
    check_name       TEXT        NOT NULL,
    uid              TEXT        NOT NULL,
    status           TEXT        NOT NULL
                     CHECK (status IN ('pending', 'success', 'failure', 'error', 'canceled')),
    comment          TEXT        NOT NULL,
    url              TEXT        NOT NULL,
    version          INTEGER     NOT NULL DEFAULT 1,
    sent_version     INTEGER     NOT NULL DEFAULT 0,
    koji_build_id    BIGINT REFERENCES koji_builds,
    test_run_id      BIGINT REFERENCES test_runs,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (pull_request_id, uid)
);
CREATE INDEX flags_pipeline ON flags (pipeline_id);

-- Why the service did, or did not do, something for an event: one row per
-- decision, in the order taken. Re-running an event adds rows.
CREATE TABLE decisions (
    id           BIGSERIAL PRIMARY KEY,
    event_id     BIGINT      NOT NULL REFERENCES events,
    handler      TEXT        NOT NULL,
    outcome      TEXT        NOT NULL CHECK (outcome IN ('acted', 'skipped', 'waiting', 'failed')),
    subject      TEXT,
    reason       TEXT        NOT NULL,
    pipeline_id  BIGINT REFERENCES pipelines,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX decisions_event ON decisions (event_id, id);
CREATE INDEX decisions_pipeline ON decisions (pipeline_id) WHERE pipeline_id IS NOT NULL;

-- The work that carries decisions out. Each job has a key naming its intent
-- (e.g. submit-scratch-build:17): the same intent never becomes two jobs.
CREATE TABLE jobs (
    id            BIGSERIAL PRIMARY KEY,
    kind          TEXT        NOT NULL,
    queue         TEXT        NOT NULL,
    dedup_key     TEXT        NOT NULL UNIQUE,
    payload       JSONB       NOT NULL DEFAULT '{}'::jsonb,
    state         TEXT        NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'done', 'dead', 'canceled')),
    attempts      INTEGER     NOT NULL DEFAULT 0,
    max_attempts  INTEGER     NOT NULL DEFAULT 10,
    run_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_by     TEXT,
    locked_until  TIMESTAMPTZ,
    last_error    TEXT,
    result        JSONB,
    event_id      BIGINT REFERENCES events,
    pipeline_id   BIGINT REFERENCES pipelines,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ
);
CREATE INDEX jobs_ready ON jobs (queue, run_at) WHERE state = 'pending';
-- Superseding a pipeline cancels its jobs that have not started.
CREATE INDEX jobs_pipeline_pending ON jobs (pipeline_id) WHERE state = 'pending';

-- What jobs looked up for the decisions (does a project have an eln branch,
-- does a commit have .fmf/version, is a user a packager), with when.
CREATE TABLE facts (
    key         TEXT PRIMARY KEY,
    value       JSONB       NOT NULL,
    checked_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Events whose decisions wait for a fact; they are decided again when it arrives.
CREATE TABLE waiting_events (
    fact_key    TEXT        NOT NULL,
    event_id    BIGINT      NOT NULL REFERENCES events,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (fact_key, event_id)
);

-- Wake the deciders when events arrive (one notification per statement, and
-- PostgreSQL folds repeats within a transaction).
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fedora_ci_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- Dead jobs, counted per queue for metrics and the status page.
CREATE INDEX jobs_dead ON jobs (queue) WHERE state = 'dead';

-- Jobs whose runner's lease ran out are taken over.
CREATE INDEX jobs_leased ON jobs (queue, locked_until) WHERE state = 'running';
