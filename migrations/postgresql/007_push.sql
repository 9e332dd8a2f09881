-- Web Push (RFC 8030/8291/8292): each device's subscription, kept per session (logging out of
-- that session removes it), and one claim per (notification, subscription): whichever process
-- inserts it is the one that pushes, so a notification reaches a device at most once however
-- many processes look for due ones.

CREATE TABLE push_subscriptions (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    endpoint   TEXT NOT NULL UNIQUE,
    p256dh     TEXT NOT NULL,
    auth       TEXT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);
CREATE INDEX push_subscriptions_by_session ON push_subscriptions (session_id);

CREATE TABLE push_deliveries (
    notification_id BIGINT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    subscription_id BIGINT NOT NULL REFERENCES push_subscriptions (id) ON DELETE CASCADE,
    claimed_at      TEXT NOT NULL,
    status          INTEGER, -- the push service's answer (201, 404, 410, 429, ...); NULL: sending
    PRIMARY KEY (notification_id, subscription_id)
);

-- When a notification was first pushed to one of the person's devices (the inbox says so).
ALTER TABLE notifications ADD COLUMN pushed_at TEXT;
-- Due for a push: not yet acknowledged by any socket and not read.
CREATE INDEX notifications_unacknowledged ON notifications (created_at)
    WHERE delivered_at IS NULL AND read_at IS NULL;
