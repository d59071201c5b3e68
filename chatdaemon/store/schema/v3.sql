-- v3: banned accounts.
ALTER TABLE users ADD COLUMN banned INTEGER NOT NULL DEFAULT 0;
