-- v7: room topics (IRC's TOPIC, shown to every dialect that has one).
ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT '';
ALTER TABLE rooms ADD COLUMN topic_by TEXT NOT NULL DEFAULT '';
ALTER TABLE rooms ADD COLUMN topic_at ${int} NOT NULL DEFAULT 0;  -- ms since the epoch
