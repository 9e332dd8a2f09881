-- Accounts, sessions, the marketplace and the notification inbox.
-- Times are UTC text, 'YYYY-MM-DDTHH:MM:SSZ'; money is integer minor units (cents).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

-- The cookie carries a random token; the table keeps only its SHA-256, so a copy of the
-- database does not hand out live sessions.
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    revoked_at   TEXT,
    user_agent   TEXT NOT NULL DEFAULT '',
    ip           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_user ON sessions (user_id, revoked_at);

CREATE TABLE services (
    id               INTEGER PRIMARY KEY,
    provider_id      INTEGER NOT NULL REFERENCES users (id),
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    price_cents      INTEGER NOT NULL CHECK (price_cents > 0),
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes > 0),
    published        INTEGER NOT NULL DEFAULT 1 CHECK (published IN (0, 1)),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX services_by_provider ON services (provider_id);

-- A booking keeps the name and price it was made at: a later edit of the service must not
-- change what the client agreed to pay.
CREATE TABLE bookings (
    id           INTEGER PRIMARY KEY,
    service_id   INTEGER NOT NULL REFERENCES services (id),
    client_id    INTEGER NOT NULL REFERENCES users (id),
    provider_id  INTEGER NOT NULL REFERENCES users (id),
    service_name TEXT NOT NULL,
    price_cents  INTEGER NOT NULL CHECK (price_cents > 0),
    scheduled_at TEXT NOT NULL,
    note         TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'accepted', 'declined', 'cancelled', 'completed')),
    cancelled_by INTEGER REFERENCES users (id),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    CHECK (client_id <> provider_id)
);
CREATE INDEX bookings_by_client ON bookings (client_id, id);
CREATE INDEX bookings_by_provider ON bookings (provider_id, id);

CREATE TABLE payments (
    id              INTEGER PRIMARY KEY,
    booking_id      INTEGER NOT NULL REFERENCES bookings (id),
    payer_id        INTEGER NOT NULL REFERENCES users (id),
    payee_id        INTEGER NOT NULL REFERENCES users (id),
    amount_cents    INTEGER NOT NULL CHECK (amount_cents > 0),
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    idempotency_key TEXT NOT NULL,
    card_last4      TEXT NOT NULL,
    processor_ref   TEXT,
    failure_reason  TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (payer_id, idempotency_key)
);
-- At most one live payment per booking: a second one cannot even be written.
CREATE UNIQUE INDEX payments_one_live_per_booking
    ON payments (booking_id) WHERE status IN ('pending', 'succeeded', 'refunded');
CREATE INDEX payments_by_booking ON payments (booking_id, id);

-- AUTOINCREMENT: ids are never reused, so a client resuming from an id never skips a row.
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type         TEXT NOT NULL CHECK (type IN ('booking_update', 'payment_update', 'notification')),
    event        TEXT NOT NULL,
    key          TEXT,
    data         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    seen_at      TEXT,
    read_at      TEXT,
    delivered_at TEXT
);
CREATE INDEX notifications_by_user ON notifications (user_id, id);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;
