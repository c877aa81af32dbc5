-- Security events reach the Redis stream from the audit log itself (the audit row is written in
-- the same transaction as the change, so it is the outbox); this cursor records how far the
-- relay has delivered.
CREATE TABLE relay_cursor (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL
);
INSERT INTO relay_cursor (id, seq) VALUES (1, 0);
