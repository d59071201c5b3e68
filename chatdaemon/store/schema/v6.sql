-- v6: several nodes on PostgreSQL. Message ids come from one sequence (the store commits them in id order
-- under a lock); files are kept in the database, in chunks, where every node reaches them. Nothing for SQLite,
-- whose ids come from the one writer and whose files stay under data_dir/files.
--@postgresql
CREATE SEQUENCE message_ids;
SELECT setval('message_ids', coalesce((SELECT max(id) FROM messages), 0) + 1, false);
CREATE TABLE file_chunks (
    file_id TEXT NOT NULL,
    seq     ${int} NOT NULL,            -- 0, 1, ...: each chunk is store.postgres.FILE_CHUNK bytes but the last
    data    BYTEA NOT NULL,
    PRIMARY KEY (file_id, seq)
);
