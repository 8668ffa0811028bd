-- A pipeline is the CI of one head commit of a pull request. It ends when a newer head
-- supersedes it or the pull request closes, and runs again when the pull request is reopened
-- or its head returns to that commit: each run is a round, and the builds a round decides
-- carry the round in their keys, so a new round builds again while a repeated decision
-- within one round still finds what it made.
ALTER TABLE pipelines ADD COLUMN round INTEGER NOT NULL DEFAULT 1 CHECK (round >= 1);
