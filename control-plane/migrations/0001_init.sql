-- Portable between SQLite and PostgreSQL: only TEXT and BIGINT columns, timestamps are seconds
-- since the epoch, binary values are base64/hex text, booleans are 0/1.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    scopes TEXT NOT NULL,
    tenant TEXT,
    totp_secret TEXT,
    totp_pending TEXT,
    totp_last_step BIGINT,
    disabled BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    previous_secret_hash TEXT,
    previous_secret_expires BIGINT,
    scopes TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    disabled BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    sealed_private TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activated_at BIGINT,
    retire_after BIGINT
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    amr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE revocations (
    id TEXT PRIMARY KEY,
    jti TEXT,
    sid TEXT,
    sub TEXT,
    sub_before BIGINT,
    exp BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX revocations_exp ON revocations (exp);

CREATE TABLE policy_versions (
    version BIGINT PRIMARY KEY,
    schema_text TEXT NOT NULL,
    policies TEXT NOT NULL,
    entities TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE bundle_state (
    id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL,
    active_policy_version BIGINT NOT NULL
);
INSERT INTO bundle_state (id, version, active_policy_version) VALUES (1, 1, 0);

CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    request_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor);
CREATE INDEX audit_log_action ON audit_log (action);
CREATE INDEX audit_log_target ON audit_log (target);
