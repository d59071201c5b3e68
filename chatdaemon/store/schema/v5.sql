-- v5: edits, deletions, reactions and read markers (seeds 003 and 004).
-- An edit or a deletion changes messages.body in place (a deleted message keeps its row, kind 'deleted', body ''),
-- so every dialect's history shows the current text; this table says when it changed.
CREATE TABLE message_changes (
    message_id ${int} PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    edited     ${int},                 -- ms since the epoch of the last edit, or NULL
    deleted    ${int},                 -- ms since the epoch of the deletion, or NULL
    deleted_by TEXT
);

CREATE TABLE reactions (
    message_id ${int} NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    "user"       TEXT NOT NULL,
    emoji      TEXT NOT NULL,
    created    ${int} NOT NULL,
    PRIMARY KEY (message_id, "user", emoji)
);

CREATE TABLE read_marks (               -- the last message id a user has read in a room
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    "user"    TEXT NOT NULL,
    upto    ${int} NOT NULL,
    PRIMARY KEY (room_id, "user")
);
