-- v3: banned accounts.
ALTER TABLE users ADD COLUMN banned ${int} NOT NULL DEFAULT 0;
