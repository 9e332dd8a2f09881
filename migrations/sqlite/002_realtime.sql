-- Live delivery: an authoritative unread count per user, and the client message ids already
-- applied (a replayed offline queue changes nothing twice).
--
-- The count is kept by triggers, so it moves in the same statement as every notification
-- insert, read mark or delete, whoever writes them. The insert trigger runs BEFORE the row is
-- stored, so `INSERT ... RETURNING (SELECT unread_count ...)` reads the count including it:
-- each frame can carry the user's exact unread count without a query of its own.

ALTER TABLE users ADD COLUMN unread_count INTEGER NOT NULL DEFAULT 0;

UPDATE users SET unread_count = (
    SELECT count(*) FROM notifications n WHERE n.user_id = users.id AND n.read_at IS NULL
);

CREATE TRIGGER notifications_unread_on_insert BEFORE INSERT ON notifications
WHEN NEW.read_at IS NULL
BEGIN
    UPDATE users SET unread_count = unread_count + 1 WHERE id = NEW.user_id;
END;

CREATE TRIGGER notifications_unread_on_read AFTER UPDATE OF read_at ON notifications
WHEN OLD.read_at IS NULL AND NEW.read_at IS NOT NULL
BEGIN
    UPDATE users SET unread_count = unread_count - 1 WHERE id = NEW.user_id;
END;

CREATE TRIGGER notifications_unread_on_unread AFTER UPDATE OF read_at ON notifications
WHEN OLD.read_at IS NOT NULL AND NEW.read_at IS NULL
BEGIN
    UPDATE users SET unread_count = unread_count + 1 WHERE id = NEW.user_id;
END;

CREATE TRIGGER notifications_unread_on_delete AFTER DELETE ON notifications
WHEN OLD.read_at IS NULL
BEGIN
    UPDATE users SET unread_count = unread_count - 1 WHERE id = OLD.user_id;
END;

-- The counter answers "how many unread"; this index only slowed every insert down.
DROP INDEX notifications_unread;

CREATE TABLE client_messages (
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_msg_id TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (user_id, client_msg_id)
) WITHOUT ROWID;
CREATE INDEX client_messages_by_age ON client_messages (created_at);
