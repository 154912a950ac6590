-- Fleet service schema, version 3: accounts an admin can disable (their
-- sessions and tokens stop working at once, their history stays), and
-- the lookups that end every session or token of one user.
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
