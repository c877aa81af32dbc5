-- Clients get roles as they have scopes (their own tokens carry them, and a user's roles reach a
-- token issued to the client only where the client has them too) and an optional tenant (their
-- own tokens carry it, and only that tenant's administrators manage them).
ALTER TABLE clients ADD COLUMN roles TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN tenant TEXT;
