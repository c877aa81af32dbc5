-- Whether the audit chain is keyed (HMAC under a key derived from the master key). Stores from
-- before are re-hashed once at start, after their unkeyed chain verifies (audit::rekey).
ALTER TABLE audit_head ADD COLUMN keyed BIGINT NOT NULL DEFAULT 0;
