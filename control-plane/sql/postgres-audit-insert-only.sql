-- The service's own Postgres role, which may append to the audit log but never change or delete
-- a row of it (it may blank a row's client address, for an erasure; a changed address breaks the
-- chain). Run once as the database owner, after `portcullis migrate` (with the owner's
-- DATABASE_URL) has created the tables:
--
--   psql "$OWNER_DATABASE_URL" -f control-plane/sql/postgres-audit-insert-only.sql
--   ALTER ROLE portcullis_app PASSWORD '…';          -- outside this file, from a secret store
--
-- Then run `portcullis serve` with DATABASE_URL=postgres://portcullis_app:…@host/db. Later
-- migrations run as the owner again (`portcullis migrate`), and this file is re-run after them
-- so that new tables are granted too.
DO $$ BEGIN CREATE ROLE portcullis_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT USAGE ON SCHEMA public TO portcullis_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO portcullis_app;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM portcullis_app;
-- Only to erase a person's addresses (the chain covers their pseudonyms, not the addresses).
GRANT UPDATE (client_ip) ON audit_log TO portcullis_app;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM portcullis_app;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
