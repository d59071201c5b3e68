-- v2: friends, friend requests, blocks, files, metadata, feedback.
CREATE TABLE friends (                  -- one row each way
    "user"   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    friend TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    since  ${int} NOT NULL,
    PRIMARY KEY ("user", friend)
);

CREATE TABLE friend_requests (
    sender   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    receiver TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created  ${int} NOT NULL,
    PRIMARY KEY (sender, receiver)
);

CREATE TABLE blocks (
    "user"    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    blocked TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created ${int} NOT NULL,
    PRIMARY KEY ("user", blocked)
);

CREATE TABLE files (                    -- stored under data_dir/files/ by id; name is for display only
    id      TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    mime    TEXT NOT NULL,
    size    ${int} NOT NULL,
    sha256  TEXT NOT NULL,
    created ${int} NOT NULL
);
CREATE INDEX files_by_room ON files(room_id, created);
CREATE INDEX files_by_owner ON files(owner);

CREATE TABLE metadata (                 -- message_id 0: about the user; otherwise about that message
    "user"       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    message_id ${int} NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,           -- JSON
    updated    ${int} NOT NULL,
    PRIMARY KEY ("user", message_id, key)
);

CREATE TABLE feedback (
    id      ${serial},
    "user"    TEXT NOT NULL,
    body    TEXT NOT NULL,
    rating  ${int},
    created ${int} NOT NULL
);
