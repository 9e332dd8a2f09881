-- Conversations per booking (docs/conversations.md): messages with a per-conversation seq,
-- each party's "read up to" watermark, and presence (which process holds whose sockets).
--
-- Messages and read receipts also travel in each party's stream, as `notifications` rows of
-- type 'message' (born read: they never count as unread notifications and never show in the
-- inbox), so they inherit the ordering contract: per-user seq, replay, gap fill. SQLite cannot
-- change a CHECK constraint, so the table is rebuilt with the same rows, ids, indexes and
-- triggers.

CREATE TABLE notifications_new (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type         TEXT NOT NULL
                 CHECK (type IN ('booking_update', 'payment_update', 'notification', 'message')),
    event        TEXT NOT NULL,
    key          TEXT,
    data         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    seen_at      TEXT,
    read_at      TEXT,
    delivered_at TEXT,
    seq          INTEGER
);
INSERT INTO notifications_new
    (id, user_id, type, event, key, data, created_at, seen_at, read_at, delivered_at, seq)
    SELECT id, user_id, type, event, key, data, created_at, seen_at, read_at, delivered_at, seq
    FROM notifications;
-- AUTOINCREMENT never reuses an id, even one deleted since: carry the high-water mark over.
UPDATE sqlite_sequence SET seq = max(seq, (
    SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'notifications'
)) WHERE name = 'notifications_new';
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;
CREATE INDEX notifications_by_user ON notifications (user_id, id);
CREATE UNIQUE INDEX notifications_by_user_seq ON notifications (user_id, seq);

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

-- A person's unread messages over every conversation, kept with each message and receipt.
ALTER TABLE users ADD COLUMN unread_messages INTEGER NOT NULL DEFAULT 0;
-- When the person's last socket closed (presence: "last seen 5 min ago").
ALTER TABLE users ADD COLUMN last_seen_at TEXT;

CREATE TABLE conversations (
    booking_id INTEGER PRIMARY KEY REFERENCES bookings (id) ON DELETE CASCADE,
    last_seq   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE TABLE conversation_members (
    booking_id INTEGER NOT NULL REFERENCES conversations (booking_id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    read_seq   INTEGER NOT NULL DEFAULT 0,
    muted      INTEGER NOT NULL DEFAULT 0 CHECK (muted IN (0, 1)),
    PRIMARY KEY (booking_id, user_id)
) WITHOUT ROWID;
CREATE INDEX conversation_members_by_user ON conversation_members (user_id);

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    booking_id    INTEGER NOT NULL REFERENCES conversations (booking_id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    sender_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body          TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    client_msg_id TEXT,
    created_at    TEXT NOT NULL,
    UNIQUE (booking_id, seq),
    UNIQUE (sender_id, client_msg_id)
);
-- The per-person rate limit counts a sender's recent messages.
CREATE INDEX messages_by_sender ON messages (sender_id, created_at);

-- Presence across processes: each process (node) keeps a heartbeat here, and one row per user
-- with a socket open on it. A node whose heartbeat is old has died: its rows no longer count,
-- and the first node to notice removes them.
CREATE TABLE presence_nodes (
    node         TEXT PRIMARY KEY,
    heartbeat_at REAL NOT NULL -- Unix time in seconds
) WITHOUT ROWID;

CREATE TABLE presence (
    node    TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    PRIMARY KEY (node, user_id)
) WITHOUT ROWID;
CREATE INDEX presence_by_user ON presence (user_id);

-- What each user's sockets on a node are subscribed to right now (`conversation:42` while a
-- visible page shows that thread): "is the recipient looking?" is asked across processes.
CREATE TABLE presence_topics (
    node    TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    topic   TEXT NOT NULL,
    PRIMARY KEY (node, user_id, topic)
) WITHOUT ROWID;
CREATE INDEX presence_topics_by_topic ON presence_topics (topic, user_id);
