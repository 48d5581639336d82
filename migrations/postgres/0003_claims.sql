-- Pull distribution: offers to partners, claims with leases, dispositions.

-- When the lead entered its current stage (time in state).
ALTER TABLE leads ADD COLUMN stage_since BIGINT;

-- One offer per lead in the pull pool.
CREATE TABLE offers (
    lead_id       TEXT PRIMARY KEY,
    route         TEXT NOT NULL,
    source        TEXT NOT NULL,
    product       TEXT,
    score         BIGINT NOT NULL,
    partners      TEXT NOT NULL,         -- JSON [partner]: who may claim, in hand-over order
    exclusive_ms  BIGINT NOT NULL,       -- exclusive-first: each partner's turn (0 = open at once)
    open_at       BIGINT NOT NULL,       -- from then on, any listed partner may claim
    status        TEXT NOT NULL,         -- open | claimed | confirmed | expired
    expires_at    BIGINT NOT NULL,       -- an open offer nobody claims by then expires
    claim_id      TEXT,
    claimed_by    TEXT,
    lease_until   BIGINT,
    sla_breached  BIGINT NOT NULL,       -- 1 once a claim-SLA breach was recorded
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX offers_by_status ON offers (status, created_at);
CREATE INDEX offers_by_expiry ON offers (status, expires_at);
CREATE INDEX offers_by_lease ON offers (status, lease_until);

CREATE TABLE claims (
    id            TEXT PRIMARY KEY,
    lead_id       TEXT NOT NULL,
    partner       TEXT NOT NULL,
    status        TEXT NOT NULL,         -- leased | confirmed | expired
    offered_at    BIGINT NOT NULL,
    claimed_at    BIGINT NOT NULL,
    lease_until   BIGINT NOT NULL,
    confirmed_at  BIGINT,
    ended_at      BIGINT,
    cap_periods   TEXT NOT NULL          -- JSON [counter key] taken by this claim
);
CREATE INDEX claims_by_partner ON claims (partner, claimed_at);
CREATE INDEX claims_by_lead ON claims (lead_id);

-- What a partner or push buyer reported about a lead.
CREATE TABLE dispositions (
    id           TEXT PRIMARY KEY,
    lead_id      TEXT NOT NULL,
    buyer        TEXT NOT NULL,
    delivery_id  TEXT,
    kind         TEXT NOT NULL,          -- accepted | rejected | returned | contacted | converted
    reason       TEXT,
    value        TEXT,
    at           BIGINT NOT NULL
);
CREATE INDEX dispositions_by_buyer ON dispositions (buyer, kind, at);
CREATE INDEX dispositions_by_lead ON dispositions (lead_id, at);

-- SLA bookkeeping for delivered or claimed leads awaiting a disposition.
CREATE TABLE sla_breaches (
    lead_id  TEXT NOT NULL,
    buyer    TEXT NOT NULL,
    kind     TEXT NOT NULL,              -- claim | disposition
    at       BIGINT NOT NULL,
    PRIMARY KEY (lead_id, buyer, kind)
);
