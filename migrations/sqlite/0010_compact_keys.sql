-- Dedupe keys and idempotency records are looked up and inserted by key only: as
-- WITHOUT ROWID tables each is one B-tree (the key is the row), not a rowid table plus a
-- separate primary-key index, so every insert writes half the pages.
CREATE TABLE dedupe_keys_compact (
    key_hash   TEXT PRIMARY KEY,
    lead_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO dedupe_keys_compact (key_hash, lead_id, created_at)
    SELECT key_hash, lead_id, created_at FROM dedupe_keys;
DROP TABLE dedupe_keys;
ALTER TABLE dedupe_keys_compact RENAME TO dedupe_keys;

CREATE TABLE idempotency_compact (
    key        TEXT PRIMARY KEY,
    body_hash  TEXT,
    result     TEXT NOT NULL,
    created_at BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO idempotency_compact (key, body_hash, result, created_at)
    SELECT key, body_hash, result, created_at FROM idempotency;
DROP TABLE idempotency;
ALTER TABLE idempotency_compact RENAME TO idempotency;
