-- Audit events committed with the change they record but not yet chained: a hot path (the code
-- exchange) writes its row here in its own transaction, without waiting its turn on the chain
-- head, and the group-commit writer moves the rows into audit_log (chained, in order) and out
-- of here in one transaction shortly after.
CREATE TABLE audit_outbox (
    id TEXT PRIMARY KEY,
    queued_at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    request_id TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_outbox_queued ON audit_outbox (queued_at, id);
