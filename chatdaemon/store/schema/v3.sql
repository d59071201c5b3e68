-- v3: banned accounts, and the feedback users leave the operators (seed 000 FEEDBACK).
ALTER TABLE users ADD COLUMN banned INTEGER NOT NULL DEFAULT 0;

CREATE TABLE feedback (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,                 -- no foreign key: feedback outlives a deleted account
    body TEXT NOT NULL,
    ts   INTEGER NOT NULL               -- ms since the epoch
);
