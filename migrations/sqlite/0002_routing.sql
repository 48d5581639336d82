-- Scoring, routing and the delivery outbox.

ALTER TABLE leads ADD COLUMN score BIGINT;
ALTER TABLE leads ADD COLUMN grade TEXT;
-- Lifecycle from scoring thresholds (e.g. "qualified"), NULL below every threshold.
ALTER TABLE leads ADD COLUMN lifecycle TEXT;
-- Where the lead is in distribution: new | routed | delivered | unsold.
ALTER TABLE leads ADD COLUMN stage TEXT NOT NULL DEFAULT 'new';

-- One row per (lead, buyer) delivery: the transactional outbox.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,     -- also the webhook-id / Message-ID
    lead_id         TEXT NOT NULL,
    buyer           TEXT NOT NULL,
    route           TEXT NOT NULL,
    payload         TEXT NOT NULL,        -- JSON, versioned: {"type": "webhook_v1", …}
    status          TEXT NOT NULL,        -- scheduled | delivered | rejected | dead
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    cap_periods     TEXT NOT NULL,        -- JSON [period key] counted for this delivery
    price           TEXT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_by_lead ON deliveries (lead_id);
CREATE INDEX deliveries_by_buyer ON deliveries (buyer, created_at);

CREATE TABLE delivery_attempts (
    id           INTEGER PRIMARY KEY,
    delivery_id  TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    outcome      TEXT NOT NULL,           -- delivered | rejected | retry | dead | gone
    status_code  BIGINT,
    error        TEXT,
    response     TEXT                     -- truncated to 64 KiB
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, attempt);

-- Cap counters per buyer and local period ("day:2026-11-25").
CREATE TABLE cap_counters (
    buyer  TEXT NOT NULL,
    period TEXT NOT NULL,
    count  BIGINT NOT NULL,
    PRIMARY KEY (buyer, period)
);

-- Per-buyer routing state that must survive restarts and reloads.
CREATE TABLE buyer_state (
    buyer            TEXT PRIMARY KEY,
    last_assigned_at BIGINT,
    assigned_seq     BIGINT NOT NULL DEFAULT 0,
    disabled_at      BIGINT,
    disabled_reason  TEXT
);
