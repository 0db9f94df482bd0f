-- One row per media, the next offset to apply per partition, and the store's generation.
-- Times are epoch milliseconds (UTC) so SQLite and PostgreSQL compare and sort alike.
CREATE TABLE media (
    media_id            TEXT PRIMARY KEY,
    status              TEXT NOT NULL,
    status_at           INTEGER NOT NULL,
    status_event_id     TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    day                 TEXT NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_error_kind     TEXT,
    last_error_message  TEXT,
    last_error_at       INTEGER,
    last_error_event_id TEXT,
    next_retry_at       INTEGER,
    detected_at         INTEGER,
    last_failed_at      INTEGER,
    stored_at           INTEGER,
    dead_lettered_at    INTEGER,
    redriven_at         INTEGER,
    dismissed_at        INTEGER,
    bucket              TEXT,
    object_key          TEXT,
    size                INTEGER,
    sha256              TEXT,
    content_type        TEXT,
    provider            TEXT,
    client_id           TEXT,
    instance_id         TEXT,
    message_id          TEXT,
    chat_id             TEXT,
    sender_id           TEXT,
    sender_name         TEXT,
    media_type          TEXT,
    mimetype            TEXT,
    file_name           TEXT
);
CREATE INDEX media_created ON media (created_at, media_id);
CREATE INDEX media_client_created ON media (client_id, created_at, media_id);
CREATE INDEX media_instance_created ON media (instance_id, created_at, media_id);
CREATE INDEX media_status_created ON media (status, created_at, media_id);
CREATE INDEX media_daily ON media (client_id, instance_id, day, status);

CREATE TABLE offsets (
    topic        TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    next_offset  INTEGER NOT NULL,
    PRIMARY KEY (topic, partition_id)
);

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
