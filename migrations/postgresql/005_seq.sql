-- Per-user sequence numbers (DESIGN.md, "Delivery across processes"): each notification of a
-- user gets seq = 1, 2, 3, ... in the transaction that stores it, under the lock on the
-- user's row. PostgreSQL's version of migrations/sqlite/005_seq.sql.

ALTER TABLE users ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN seq BIGINT;

UPDATE notifications SET seq = numbered.seq
FROM (
    SELECT id, row_number() OVER (PARTITION BY user_id ORDER BY id) AS seq FROM notifications
) AS numbered
WHERE notifications.id = numbered.id;
UPDATE users SET last_seq = coalesce(
    (SELECT max(seq) FROM notifications WHERE notifications.user_id = users.id), 0
);
ALTER TABLE notifications ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX notifications_by_user_seq ON notifications (user_id, seq);

-- The trigger assigns seq, whatever the INSERT says. Its UPDATE takes the user's row lock
-- first, so a second transaction storing for the same user waits for this one to end: per
-- user, commit order is seq order. The id is drawn after that lock too, so per user, id
-- order is seq order as well. (A missing user leaves seq NULL: the insert is refused.)
CREATE OR REPLACE FUNCTION notifications_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE users
        SET unread_count = unread_count + (NEW.read_at IS NULL)::int,
            last_seq = last_seq + 1
        WHERE id = NEW.user_id
        RETURNING last_seq INTO NEW.seq;
    NEW.id := nextval('notifications_id_seq');
    RETURN NEW;
END
$$;
