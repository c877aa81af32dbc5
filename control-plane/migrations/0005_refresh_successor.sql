-- A rotated refresh token remembers its successor (sealed under the master key), so that an
-- identical retry within the grace window gets the same successor instead of a refusal.
ALTER TABLE refresh_tokens ADD COLUMN successor TEXT;
