-- Email fallback and digests: when a notification went out in a digest email, and how each
-- person wants email ('fallback': only with no live socket and no push device; 'always';
-- 'never', which the signed unsubscribe link sets).

ALTER TABLE notifications ADD COLUMN emailed_at TEXT;
ALTER TABLE users ADD COLUMN email_notifications TEXT NOT NULL DEFAULT 'fallback'
    CHECK (email_notifications IN ('fallback', 'always', 'never'));
-- Due for a digest: unread and not yet emailed.
CREATE INDEX notifications_unemailed ON notifications (created_at)
    WHERE read_at IS NULL AND emailed_at IS NULL;
