-- Browser sign-in (authorization code + PKCE): a client registers where the browser may be sent
-- back (space-separated URIs, each checked to hold no space) and how it authenticates at the
-- token endpoint (`none` for public clients). Existing clients keep their secrets.
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT 'client_secret_basic';

-- Authorization codes, stored as keyed hashes: single use, short lived, bound to the client,
-- the redirect URI and the PKCE challenge. `session_id` is the session the exchange opened, so a
-- replayed code can end it (RFC 6749 §4.1.2); `browser_session_id` the sign-in it came from.
CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    audience TEXT NOT NULL,
    nonce TEXT,
    amr TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    session_id TEXT,
    browser_session_id TEXT
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

-- A browser's sign-in (SSO) session: the cookie holds a random value, stored here as a keyed
-- hash. It ends at `expires_at` (PORTCULLIS_SESSION_MAX after sign-in), when unused for
-- PORTCULLIS_SESSION_IDLE after `last_seen_at`, or at `ended_at` (logout, disable, password
-- change, session cap). Refresh-token sessions opened through it name it, so ending it ends them.
CREATE TABLE browser_sessions (
    id TEXT PRIMARY KEY,
    cookie_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    amr TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX browser_sessions_user ON browser_sessions (user_id);
ALTER TABLE sessions ADD COLUMN browser_session_id TEXT;
