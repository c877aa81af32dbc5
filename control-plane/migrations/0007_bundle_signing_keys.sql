-- The keys that sign the edge bundle (control-plane/src/bundle_keys.rs): separate from the token
-- signing keys, with the same columns. States: next (to be pinned by edges before it signs),
-- active (signs every bundle), retired (retire_after = when it stopped signing). The control
-- plane creates an active and a next key when it opens the store.
CREATE TABLE bundle_signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    sealed_private TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activated_at BIGINT,
    retire_after BIGINT
);
