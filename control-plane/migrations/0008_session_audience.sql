-- The audiences a session's grant was for (RFC 8707 resource), space separated: a refresh
-- token gives access tokens only for them. Empty for sessions opened before the column existed.
ALTER TABLE sessions ADD COLUMN audience TEXT NOT NULL DEFAULT '';
