-- Hardening: limits and leases that must hold across processes live here, not in memory.

-- One row per login attempt being verified or failed, per scope ('account' or 'address').
-- An attempt is reserved (inserted) before the password is verified, in the same transaction
-- that counts the recent ones, so a burst of concurrent logins gets exactly the allowed number
-- of guesses. A successful login deletes its reservation (and the account's failures).
CREATE TABLE login_attempts (
    id           INTEGER PRIMARY KEY,
    scope        TEXT NOT NULL CHECK (scope IN ('account', 'address')),
    key          TEXT NOT NULL,
    attempted_at REAL NOT NULL -- Unix time in seconds
);
CREATE INDEX login_attempts_by_key ON login_attempts (scope, key, attempted_at);
CREATE INDEX login_attempts_by_age ON login_attempts (attempted_at);

-- Periodic jobs run in one process at a time: whoever holds an unexpired lease.
CREATE TABLE job_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at REAL NOT NULL -- Unix time in seconds
) WITHOUT ROWID;

-- Client message ids get an order (the id), so each user keeps only the newest ones.
CREATE TABLE client_messages_ordered (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_msg_id TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (user_id, client_msg_id)
);
INSERT INTO client_messages_ordered (user_id, client_msg_id, created_at)
    SELECT user_id, client_msg_id, created_at FROM client_messages ORDER BY created_at;
DROP TABLE client_messages;
ALTER TABLE client_messages_ordered RENAME TO client_messages;
CREATE INDEX client_messages_by_user ON client_messages (user_id, id);
CREATE INDEX client_messages_by_age ON client_messages (created_at);
