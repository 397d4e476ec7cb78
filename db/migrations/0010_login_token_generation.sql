-- Login tokens (nslt_…) carry the generation of their account's credentials; rotating the
-- API key starts the next generation, so every login token issued before the rotation is
-- refused from the moment it commits. A counter, not a timestamp: nothing depends on the
-- clocks of the API processes agreeing. Tokens of the earlier format carry no generation and
-- are refused too (one may predate a rotation): their holders log in again.
ALTER TABLE users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;
