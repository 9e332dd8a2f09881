-- Conversations per booking (docs/conversations.md). PostgreSQL's version of
-- migrations/sqlite/006_conversations.sql: messages and receipts also travel in each party's
-- stream as `notifications` rows of type 'message' (born read, never in the inbox).

ALTER TABLE notifications DROP CONSTRAINT notifications_type_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_type_check
    CHECK (type IN ('booking_update', 'payment_update', 'notification', 'message'));

ALTER TABLE users ADD COLUMN unread_messages BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_seen_at TEXT;

CREATE TABLE conversations (
    booking_id BIGINT PRIMARY KEY REFERENCES bookings (id) ON DELETE CASCADE,
    last_seq   BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE TABLE conversation_members (
    booking_id BIGINT NOT NULL REFERENCES conversations (booking_id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    read_seq   BIGINT NOT NULL DEFAULT 0,
    muted      INTEGER NOT NULL DEFAULT 0 CHECK (muted IN (0, 1)),
    PRIMARY KEY (booking_id, user_id)
);
CREATE INDEX conversation_members_by_user ON conversation_members (user_id);

CREATE TABLE messages (
    id            BIGSERIAL PRIMARY KEY,
    booking_id    BIGINT NOT NULL REFERENCES conversations (booking_id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    sender_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body          TEXT NOT NULL CHECK (char_length(body) BETWEEN 1 AND 4000),
    client_msg_id TEXT,
    created_at    TEXT NOT NULL,
    UNIQUE (booking_id, seq),
    UNIQUE (sender_id, client_msg_id)
);
CREATE INDEX messages_by_sender ON messages (sender_id, created_at);

CREATE TABLE presence_nodes (
    node         TEXT PRIMARY KEY,
    heartbeat_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE presence (
    node    TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    PRIMARY KEY (node, user_id)
);
CREATE INDEX presence_by_user ON presence (user_id);

-- What each user's sockets on a node are subscribed to right now (`conversation:42` while a
-- visible page shows that thread): "is the recipient looking?" is asked across processes.
CREATE TABLE presence_topics (
    node    TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    topic   TEXT NOT NULL,
    PRIMARY KEY (node, user_id, topic)
);
CREATE INDEX presence_topics_by_topic ON presence_topics (topic, user_id);
