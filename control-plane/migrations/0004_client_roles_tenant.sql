-- Clients get roles as they have scopes (their own tokens carry them, and a user's roles reach a
-- token issued to the client only where the client has them too) and an optional tenant (their
-- own tokens carry it, and only that tenant's administrators manage them).
ALTER TABLE clients ADD COLUMN roles TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN tenant TEXT;
-- The bootstrap admin client keeps what its admin's tokens carried: the admin role, and self
-- (every user's scope for /v1/me, which a client must now hold). Other clients start without
-- roles: give each first-party client the roles its users' tokens need (PATCH
-- /admin/v1/clients/{id} {"roles": [...]}).
UPDATE clients SET roles = 'admin', scopes = scopes || ' self' WHERE name = 'portcullis-admin';
