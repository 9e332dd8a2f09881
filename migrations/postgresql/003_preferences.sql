-- Per-user notification preferences: which events pop up in the browser. The server stores
-- every notification whatever these say; they only tell the browser client whether to show a
-- toast (in_app) or a desktop notification (desktop). No row means the default: both on.

CREATE TABLE notification_preferences (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event   TEXT NOT NULL,
    in_app  INTEGER NOT NULL CHECK (in_app IN (0, 1)),
    desktop INTEGER NOT NULL CHECK (desktop IN (0, 1)),
    PRIMARY KEY (user_id, event)
);
