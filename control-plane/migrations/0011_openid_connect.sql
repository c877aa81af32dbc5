-- OpenID Connect: the keys that sign ID tokens (a chain for each algorithm a client may ask
-- for, never in the edge bundle), the algorithm each client's ID tokens are signed with, where
-- a client may have the browser sent after logout (space separated, checked as redirect URIs
-- are), and the
-- OpenID scopes (openid, profile, email, offline_access) a code and the session it opens were
-- granted: they ask for claims about the user, not for access, so they are kept apart from the
-- access scopes the tokens carry.
CREATE TABLE id_token_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    sealed_private TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activated_at BIGINT,
    retire_after BIGINT
);
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE authorization_codes ADD COLUMN openid_scope TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN openid_scope TEXT NOT NULL DEFAULT '';
