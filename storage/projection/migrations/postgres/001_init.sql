-- One row per media, the next offset to apply per partition, and the store's generation.
-- Times are epoch milliseconds (UTC) so both backends compare and sort alike.
CREATE TABLE media (
    media_id            TEXT COLLATE "C" PRIMARY KEY,
    status              TEXT COLLATE "C" NOT NULL,
    status_at           BIGINT NOT NULL,
    status_event_id     TEXT COLLATE "C" NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    day                 TEXT COLLATE "C" NOT NULL,
    attempts            BIGINT NOT NULL DEFAULT 0,
    last_error_kind     TEXT COLLATE "C",
    last_error_message  TEXT COLLATE "C",
    last_error_at       BIGINT,
    last_error_event_id TEXT COLLATE "C",
    next_retry_at       BIGINT,
    detected_at         BIGINT,
    last_failed_at      BIGINT,
    stored_at           BIGINT,
    dead_lettered_at    BIGINT,
    redriven_at         BIGINT,
    dismissed_at        BIGINT,
    bucket              TEXT COLLATE "C",
    object_key          TEXT COLLATE "C",
    size                BIGINT,
    sha256              TEXT COLLATE "C",
    content_type        TEXT COLLATE "C",
    provider            TEXT COLLATE "C",
    client_id           TEXT COLLATE "C",
    instance_id         TEXT COLLATE "C",
    message_id          TEXT COLLATE "C",
    chat_id             TEXT COLLATE "C",
    sender_id           TEXT COLLATE "C",
    sender_name         TEXT COLLATE "C",
    media_type          TEXT COLLATE "C",
    mimetype            TEXT COLLATE "C",
    file_name           TEXT COLLATE "C"
);
CREATE INDEX media_created ON media (created_at, media_id);
CREATE INDEX media_client_created ON media (client_id, created_at, media_id);
CREATE INDEX media_instance_created ON media (instance_id, created_at, media_id);
CREATE INDEX media_status_created ON media (status, created_at, media_id);
CREATE INDEX media_daily ON media (client_id, instance_id, day, status);

CREATE TABLE offsets (
    topic        TEXT COLLATE "C" NOT NULL,
    partition_id INTEGER NOT NULL,
    next_offset  BIGINT NOT NULL,
    PRIMARY KEY (topic, partition_id)
);

CREATE TABLE meta (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);
