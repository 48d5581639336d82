-- E-mail intake: per-mailbox progress and consumer state, and one row per message taken
-- from a mailbox (the exactly-once record). Portable shape (shared with PostgreSQL).

-- One row per configured mailbox (`source/name`).
CREATE TABLE email_mailboxes (
    mailbox       TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    uidvalidity   BIGINT,                -- of the folder when last_uid was recorded
    last_uid      BIGINT NOT NULL,       -- every UID up to this one is fully handled
    state         TEXT NOT NULL,         -- connecting | idle | polling | error | stopped
    last_fetch_at BIGINT,                -- last successful look at the folder (unix ms)
    last_error    TEXT,
    last_error_at BIGINT,
    updated_at    BIGINT NOT NULL
);

-- One row per message, keyed by mailbox and Message-ID (or a hash of the raw message):
-- written before its submission is committed (`pending`, with the submission id it will
-- have), `committed` once the submission is, `done` once it is moved or flagged. A crash
-- anywhere in between finds the row and never makes a second lead.
CREATE TABLE email_messages (
    mailbox       TEXT NOT NULL,
    message_key   TEXT NOT NULL,
    uidvalidity   BIGINT NOT NULL,
    uid           BIGINT NOT NULL,
    submission_id TEXT NOT NULL,
    status        TEXT NOT NULL,         -- pending | committed | done
    outcome       TEXT,                  -- processed | failed | needs_template | quarantined
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (mailbox, message_key)
);
CREATE INDEX email_messages_by_submission ON email_messages (submission_id);
