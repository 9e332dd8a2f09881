-- Preferences per event for the channels beyond the page (push, email; no row or 1: on), and
-- quiet hours: a local-time window (it may wrap past midnight) in which push and email wait,
-- critical events excepted.

ALTER TABLE notification_preferences ADD COLUMN push INTEGER NOT NULL DEFAULT 1
    CHECK (push IN (0, 1));
ALTER TABLE notification_preferences ADD COLUMN email INTEGER NOT NULL DEFAULT 1
    CHECK (email IN (0, 1));
ALTER TABLE users ADD COLUMN quiet_start TEXT; -- 'HH:MM', local time
ALTER TABLE users ADD COLUMN quiet_end TEXT;
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
