-- v4: a room's messages by time (the action dialect's get_messages from_time).
CREATE INDEX IF NOT EXISTS messages_by_room_ts ON messages(room_id, ts);
