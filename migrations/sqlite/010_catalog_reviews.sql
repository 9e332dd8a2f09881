-- The catalogue people browse: a category and a place for each service (a city, or online),
-- an optional picture stored on disk beside the database, and reviews after a completed booking.

ALTER TABLE services ADD COLUMN category TEXT NOT NULL DEFAULT 'other';
ALTER TABLE services ADD COLUMN city TEXT NOT NULL DEFAULT '';  -- '' with online = 1
ALTER TABLE services ADD COLUMN online INTEGER NOT NULL DEFAULT 0 CHECK (online IN (0, 1));
-- The stored picture's file name under <database folder>/uploads/ and its media type; NULL:
-- the generated placeholder.
ALTER TABLE services ADD COLUMN image_file TEXT;
ALTER TABLE services ADD COLUMN image_type TEXT;
CREATE INDEX services_by_category ON services (published, category);

-- One review per booking, by its client, once the booking is completed. Provider and service
-- are copied from the booking so profile and service pages read one table.
CREATE TABLE reviews (
    id          INTEGER PRIMARY KEY,
    booking_id  INTEGER NOT NULL UNIQUE REFERENCES bookings (id),
    service_id  INTEGER NOT NULL REFERENCES services (id),
    provider_id INTEGER NOT NULL REFERENCES users (id),
    client_id   INTEGER NOT NULL REFERENCES users (id),
    rating      INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body        TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);
CREATE INDEX reviews_by_service ON reviews (service_id, id);
CREATE INDEX reviews_by_provider ON reviews (provider_id, id);
