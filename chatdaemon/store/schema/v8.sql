-- v8: client message ids (exactly-once sends). A sender's own id for a message (typed clientMessageId,
-- events and colon tempId, action client_message_id) is remembered with the message, in the same
-- transaction, so a resend after a lost acknowledgement (a reconnect, a restart) is answered with the
-- original message instead of being stored twice. Rows older than limits.resend_window are pruned.
-- (IF NOT EXISTS: a database made by the abuse branch before the merge had this table as its v6.)
CREATE TABLE IF NOT EXISTS sent_ids (
    sender     TEXT NOT NULL,
    client_id  TEXT NOT NULL,           -- the client's id (over 128 characters: "sha256:" and its digest)
    message_id ${int} NOT NULL,         -- messages.id (no foreign key: rows go by time, not with the message)
    ts         ${int} NOT NULL,         -- the message's time, ms since the epoch
    digest     ${int} NOT NULL,         -- 64 bits of BLAKE2b over the room and the body: is a resend the same message?
    PRIMARY KEY (sender, client_id)
--@sqlite
) WITHOUT ROWID;
--@postgresql
);
--@all
CREATE INDEX IF NOT EXISTS sent_ids_by_ts ON sent_ids(ts);
