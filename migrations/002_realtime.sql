-- Live delivery: an authoritative unread count per user, kept in the same transaction as every
-- notification insert and read mark, so each frame can carry it without a count query; and
-- the client message ids already applied, so a replayed offline queue changes nothing twice.

ALTER TABLE users ADD COLUMN unread_count INTEGER NOT NULL DEFAULT 0 CHECK (unread_count >= 0);

UPDATE users SET unread_count = (
    SELECT count(*) FROM notifications n WHERE n.user_id = users.id AND n.read_at IS NULL
);

CREATE TABLE client_messages (
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_msg_id TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (user_id, client_msg_id)
) WITHOUT ROWID;
CREATE INDEX client_messages_by_age ON client_messages (created_at);
