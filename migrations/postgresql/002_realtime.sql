-- Live delivery: an authoritative unread count per user, and the client message ids already
-- applied (a replayed offline queue changes nothing twice). PostgreSQL's version of
-- migrations/sqlite/002_realtime.sql.
--
-- The count is kept by triggers, so it moves in the same statement as every notification
-- insert, read mark or delete, whoever writes them.

ALTER TABLE users ADD COLUMN unread_count BIGINT NOT NULL DEFAULT 0;

UPDATE users SET unread_count = (
    SELECT count(*) FROM notifications n WHERE n.user_id = users.id AND n.read_at IS NULL
);

-- Before each notification row is stored: count it, then draw its id. The UPDATE locks the
-- user's row until the transaction ends, so a second transaction storing a notification for
-- the same user waits here and draws a larger id: per user, id order is commit order, as on
-- SQLite (where one writer at a time commits).
CREATE FUNCTION notifications_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users SET unread_count = unread_count + (NEW.read_at IS NULL)::int
        WHERE id = NEW.user_id;
    NEW.id := nextval('notifications_id_seq');
    RETURN NEW;
END
$$;

-- The id comes from the trigger alone (a default would draw a second value for nothing).
ALTER TABLE notifications ALTER COLUMN id DROP DEFAULT;

CREATE TRIGGER notifications_before_insert BEFORE INSERT ON notifications
FOR EACH ROW EXECUTE FUNCTION notifications_before_insert();

CREATE FUNCTION notifications_unread_on_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE users SET unread_count = unread_count - 1 WHERE id = OLD.user_id;
    ELSE
        UPDATE users
            SET unread_count = unread_count + (NEW.read_at IS NULL)::int
                - (OLD.read_at IS NULL)::int
            WHERE id = NEW.user_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER notifications_unread_on_read AFTER UPDATE OF read_at ON notifications
FOR EACH ROW WHEN ((OLD.read_at IS NULL) <> (NEW.read_at IS NULL))
EXECUTE FUNCTION notifications_unread_on_change();

CREATE TRIGGER notifications_unread_on_delete AFTER DELETE ON notifications
FOR EACH ROW WHEN (OLD.read_at IS NULL)
EXECUTE FUNCTION notifications_unread_on_change();

-- `INSERT INTO notifications ... RETURNING unread_count_of(user_id)` gives each row the count
-- including it. A plain subquery there would read users as of the statement's start; a
-- VOLATILE function reads it afresh for each row, after that row's trigger ran.
CREATE FUNCTION unread_count_of(user_id BIGINT) RETURNS BIGINT LANGUAGE sql VOLATILE AS $$
    SELECT unread_count FROM users WHERE id = $1
$$;

CREATE TABLE client_messages (
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_msg_id TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (user_id, client_msg_id)
);
CREATE INDEX client_messages_by_age ON client_messages (created_at);
