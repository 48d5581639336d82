-- Meta Lead Ads: each lead a webhook notification announces, to be fetched from the
-- Graph API. A row is the durable promise to fetch it: retries survive restarts, and
-- (source, leadgen_id) is unique, so a lead announced twice is fetched once.
CREATE TABLE meta_fetches (
    id              TEXT PRIMARY KEY,
    source          TEXT NOT NULL,
    leadgen_id      TEXT NOT NULL,
    page_id         TEXT,
    form_id         TEXT,
    ad_id           TEXT,
    adgroup_id      TEXT,
    notification_id TEXT NOT NULL,        -- the submission holding the notification
    status          TEXT NOT NULL,        -- pending | fetched | dead
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    submission_id   TEXT,                 -- the submission holding the fetched lead
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX meta_fetches_by_lead ON meta_fetches (source, leadgen_id);
CREATE INDEX meta_fetches_due ON meta_fetches (status, next_attempt_at);
