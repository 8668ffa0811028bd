-- The inbox: every message the service has received, from the bus or from a replay,
-- recorded before it is acknowledged. `message_id` makes redelivery harmless.
CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    message_id   TEXT        NOT NULL UNIQUE,
    topic        TEXT        NOT NULL,
    headers      JSONB       NOT NULL DEFAULT '{}'::jsonb,
    -- NULL when the body is not a JSON object (a dead message); see raw_body.
    body         JSONB,
    -- For dead messages only: the first bytes of the body as received, for inspection.
    raw_body     BYTEA,
    body_size    INTEGER     NOT NULL,
    sent_at      TIMESTAMPTZ,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    source       TEXT        NOT NULL CHECK (source IN ('bus', 'replay')),
    queue        TEXT,
    priority     INTEGER,
    status       TEXT        NOT NULL DEFAULT 'received'
                 CHECK (status IN ('received', 'processed', 'skipped', 'failed', 'dead')),
    reason       TEXT,
    processed_at TIMESTAMPTZ,
    -- Only a dead message may lack a body.
    CHECK (status = 'dead' OR body IS NOT NULL)
);

CREATE INDEX events_received_at ON events (received_at);
CREATE INDEX events_topic ON events (topic, id);
-- What the decision step still has to look at.
CREATE INDEX events_pending ON events (id) WHERE status = 'received';
