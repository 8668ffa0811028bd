-- Gating (SPEC F6): Bodhi updates whose official builds are tested, and the
-- Fedora CI messages that report each test on the bus.

CREATE TABLE updates (
    id          BIGSERIAL PRIMARY KEY,
    -- Bodhi's alias, e.g. FEDORA-2021-53a7dfa185.
    alias       TEXT        NOT NULL UNIQUE,
    -- The release as Bodhi names it (f34, F43, EPEL-9).
    release     TEXT,
    url         TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Who built an official build (Koji's owner): CI messages name the issuer.
ALTER TABLE koji_builds ADD COLUMN owner TEXT;

-- Which official builds an update holds, as its messages listed them.
CREATE TABLE update_builds (
    update_id      BIGINT      NOT NULL REFERENCES updates,
    koji_build_id  BIGINT      NOT NULL REFERENCES koji_builds,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (update_id, koji_build_id)
);
CREATE INDEX update_builds_build ON update_builds (koji_build_id);

-- A pipeline is a pull request's head commit, or one build of an update in
-- one round of testing (the first announcement, or a re-trigger).
ALTER TABLE pipelines
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'pull-request'
        CHECK (kind IN ('pull-request', 'update')),
    ADD COLUMN update_id BIGINT REFERENCES updates,
    ADD COLUMN koji_build_id BIGINT REFERENCES koji_builds,
    -- What decided an update's pipeline: deciding it again finds this one.
    ADD COLUMN trigger_key TEXT UNIQUE,
    -- The release the build is tested on (rawhide, f43, epel9).
    ADD COLUMN release TEXT;
CREATE INDEX pipelines_update ON pipelines (update_id) WHERE update_id IS NOT NULL;

-- A gating test reports under a test case name (namespace.type.category),
-- and links to its JUnit results.
ALTER TABLE test_runs
    ADD COLUMN test_case TEXT,
    ADD COLUMN xunit_url TEXT;

-- Messages to publish on the bus, written in the transaction that decided
-- them, each with its message id from the start: a crash before publishing
-- loses none, and a repeat after one carries the same id.
CREATE TABLE outbox (
    id            BIGSERIAL PRIMARY KEY,
    message_id    UUID        NOT NULL UNIQUE,
    -- What the message says, once: e.g. ci:17:running.
    dedup_key     TEXT        NOT NULL UNIQUE,
    topic         TEXT        NOT NULL,
    headers       JSONB       NOT NULL,
    body          JSONB       NOT NULL,
    test_run_id   BIGINT REFERENCES test_runs,
    event_id      BIGINT REFERENCES events,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at  TIMESTAMPTZ,
    attempts      INTEGER     NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_test_run ON outbox (test_run_id);

-- Wake the publisher when a message is written.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fedora_ci_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
