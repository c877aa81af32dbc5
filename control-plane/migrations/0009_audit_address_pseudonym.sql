-- The keyed pseudonym of each audit row's client address, which the chain covers instead of the
-- address, so that an erasure can blank the address and the chain still verifies. Empty on rows
-- written before it (their chain covers the address, which they keep).
ALTER TABLE audit_log ADD COLUMN client_ip_pseudonym TEXT NOT NULL DEFAULT '';
