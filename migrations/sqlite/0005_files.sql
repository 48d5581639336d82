-- File intake: one row per file received (FTP upload, drop directory, `leadgate import`).
-- The file's rows are committed as chunk submissions whose Idempotency-Key is
-- `file:<digest>:<chunk_rows>:<chunk index>`: a chunk is either wholly committed or not at
-- all, so a restart resumes the file without losing or doubling a row.

CREATE TABLE files (
    id           TEXT PRIMARY KEY,
    source       TEXT NOT NULL,
    channel      TEXT NOT NULL,          -- ftp | drop_dir | import
    name         TEXT NOT NULL,          -- the file name as the vendor gave it
    digest       TEXT NOT NULL,          -- SHA-256 (hex) of the bytes
    size         BIGINT NOT NULL,
    format       TEXT NOT NULL,
    chunk_rows   BIGINT NOT NULL,        -- pinned for the digest: chunk keys never change
    status       TEXT NOT NULL,          -- processing | done | failed
    work_path    TEXT NOT NULL,          -- where the bytes are while processing
    results_path TEXT,
    archive_path TEXT,
    rows         BIGINT NOT NULL DEFAULT 0,
    accepted     BIGINT NOT NULL DEFAULT 0,
    duplicate    BIGINT NOT NULL DEFAULT 0,
    rejected     BIGINT NOT NULL DEFAULT 0,
    error        TEXT,
    received_at  BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX files_by_status ON files (status, channel, received_at);
CREATE INDEX files_by_digest ON files (source, digest, received_at);
