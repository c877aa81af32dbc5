-- Each policy version keeps the test corpus it was accepted with (JSON array of cases), so a
-- later push that carries no corpus is checked against the stored one.
ALTER TABLE policy_versions ADD COLUMN tests TEXT NOT NULL DEFAULT '[]';
