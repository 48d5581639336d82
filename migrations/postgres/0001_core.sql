-- Core tables: raw submissions, leads, their events, dedupe keys and idempotency records.
-- Portable shape (shared with PostgreSQL): ids are UUIDv7 text, times are unix milliseconds.

CREATE TABLE submissions (
    id           TEXT PRIMARY KEY,
    source       TEXT NOT NULL,
    channel      TEXT NOT NULL,
    format       TEXT NOT NULL,
    content_type TEXT,
    meta         TEXT NOT NULL,          -- JSON: headers worth keeping, peer address
    body         BYTEA NOT NULL,         -- exactly as received
    received_at  BIGINT NOT NULL,
    status       TEXT NOT NULL,          -- processed | failed
    error        TEXT,                   -- parser message when failed
    attempts     BIGINT NOT NULL,        -- 1 + replays
    updated_at   BIGINT NOT NULL
);
CREATE INDEX submissions_by_status ON submissions (status, received_at);
CREATE INDEX submissions_by_source ON submissions (source, received_at);

CREATE TABLE leads (
    id             TEXT PRIMARY KEY,
    submission_id  TEXT NOT NULL REFERENCES submissions (id),
    record_index   BIGINT NOT NULL,
    source         TEXT NOT NULL,
    status         TEXT NOT NULL,        -- accepted | duplicate | rejected
    fields         TEXT NOT NULL,        -- JSON canonical lead
    reasons        TEXT NOT NULL,        -- JSON [problem]
    warnings       TEXT NOT NULL,        -- JSON [problem]
    duplicate_of   TEXT,
    vendor_lead_id TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX leads_by_submission ON leads (submission_id);
CREATE INDEX leads_by_source ON leads (source, created_at);

CREATE TABLE lead_events (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id TEXT NOT NULL,
    at      BIGINT NOT NULL,
    kind    TEXT NOT NULL,
    detail  TEXT                          -- JSON
);
CREATE INDEX lead_events_by_lead ON lead_events (lead_id, id);

-- One row per hashed dedupe key: the lead that owns it and since when.
CREATE TABLE dedupe_keys (
    key_hash   TEXT PRIMARY KEY,
    lead_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Answers already given, by vendor lead id or Idempotency-Key header.
CREATE TABLE idempotency (
    key        TEXT PRIMARY KEY,
    body_hash  TEXT,
    result     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
