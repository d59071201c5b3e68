-- v1: accounts, session keys, rooms and members, messages, invitations, per-user inbox.
CREATE TABLE users (
    name     TEXT PRIMARY KEY,
    password TEXT NOT NULL,             -- argon2id hash
    created  ${int} NOT NULL,          -- ms since the epoch
    status   TEXT NOT NULL DEFAULT 'online',
    cursor   ${int} NOT NULL DEFAULT 0 -- last message id this user has been given
);

CREATE TABLE session_keys (
    key_hash TEXT PRIMARY KEY,          -- sha256 of the key; the key itself is never stored
    "user"     TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created  ${int} NOT NULL
);
CREATE INDEX session_keys_by_user ON session_keys("user");

CREATE TABLE rooms (
    id      TEXT PRIMARY KEY,
    kind    TEXT NOT NULL CHECK (kind IN ('public', 'group', 'direct')),
    name    TEXT NOT NULL,
    leader  TEXT REFERENCES users(name) ON DELETE SET NULL,
    created ${int} NOT NULL
);

CREATE TABLE members (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    "user"    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    since   ${int} NOT NULL,           -- last message id before the user joined
    PRIMARY KEY (room_id, "user")
);
CREATE INDEX members_by_user ON members("user");

CREATE TABLE invites (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    "user"    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    inviter TEXT NOT NULL,
    created ${int} NOT NULL,
    PRIMARY KEY (room_id, "user")
);

CREATE TABLE messages (
    id      ${message_id},  -- assigned by the server: increasing, committed in order
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    sender  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    body    TEXT NOT NULL,
    ts      ${int} NOT NULL            -- ms since the epoch
);
CREATE INDEX messages_by_room ON messages(room_id, id);

CREATE TABLE inbox (                    -- per-user notices waiting for the next login
    id      ${serial},
    "user"    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    kind    TEXT NOT NULL,
    payload TEXT NOT NULL,              -- JSON
    ts      ${int} NOT NULL
);
CREATE INDEX inbox_by_user ON inbox("user", id);
