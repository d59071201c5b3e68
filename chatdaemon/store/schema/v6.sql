-- v6: client message ids (exactly-once sends). A sender's own id for a message (typed clientMessageId,
-- events and colon tempId, action client_message_id) is remembered with the message, in the same
-- transaction, so a resend after a lost acknowledgement (a reconnect, a restart) is answered with the
-- original message instead of being stored twice. Rows older than limits.resend_window are pruned.
CREATE TABLE sent_ids (
    sender     TEXT NOT NULL,
    client_id  TEXT NOT NULL,           -- the client's id (over 128 characters: "sha256:" and its digest)
    message_id INTEGER NOT NULL,        -- messages.id (no foreign key: rows go by time, not with the message)
    ts         INTEGER NOT NULL,        -- the message's time, ms since the epoch
    digest     INTEGER NOT NULL,        -- 64 bits of BLAKE2b over the room and the body: is a resend the same message?
    PRIMARY KEY (sender, client_id)
) WITHOUT ROWID;
CREATE INDEX sent_ids_by_ts ON sent_ids(ts);
