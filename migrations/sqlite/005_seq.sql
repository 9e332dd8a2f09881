-- The ordering contract across processes (DESIGN.md, "Delivery across processes"): each
-- user's notifications carry `seq`, 1, 2, 3, ... in commit order, with no hole. The counter
-- lives on the user's row and moves in the storing transaction, so per user the write lock
-- (SQLite: the database's; PostgreSQL: the row's) makes commit order and seq order the same.
--
-- SQLite's BEFORE triggers cannot set NEW.seq, and a multi-row INSERT evaluates all its
-- VALUES before the first trigger runs. So the BEFORE INSERT trigger moves the counters on,
-- `INSERT ... RETURNING (SELECT last_seq FROM users ...)` reads each row's seq from them, and
-- an AFTER INSERT trigger stores it on the row. The unique index refuses anything else.

ALTER TABLE users ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN seq INTEGER;

UPDATE notifications SET seq = (
    SELECT count(*) FROM notifications older
    WHERE older.user_id = notifications.user_id AND older.id <= notifications.id
);
UPDATE users SET last_seq = (
    SELECT coalesce(max(seq), 0) FROM notifications n WHERE n.user_id = users.id
);

CREATE UNIQUE INDEX notifications_by_user_seq ON notifications (user_id, seq);

DROP TRIGGER notifications_unread_on_insert;
CREATE TRIGGER notifications_counters_on_insert BEFORE INSERT ON notifications
BEGIN
    UPDATE users SET
        last_seq = last_seq + 1,
        unread_count = unread_count + (NEW.read_at IS NULL)
    WHERE id = NEW.user_id;
END;

CREATE TRIGGER notifications_seq_on_insert AFTER INSERT ON notifications
BEGIN
    UPDATE notifications SET seq = (SELECT last_seq FROM users WHERE id = NEW.user_id)
    WHERE id = NEW.id;
END;
