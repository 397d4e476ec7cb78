-- Why a paused feed is paused: 'owner' (its owner paused it; only the owner resumes it) or
-- 'insufficient_funds' (a round found its owner unable to pay for it; the pricefeed clock
-- resumes it once the owner's default account covers a round). NULL while it is active; a
-- paused feed without a reason was paused by its owner (as every one before this migration).
ALTER TABLE price_feeds ADD COLUMN paused_reason VARCHAR(30);
UPDATE price_feeds SET paused_reason = 'owner' WHERE status = 'paused';
ALTER TABLE price_feeds ADD CONSTRAINT price_feeds_paused_reason_known
    CHECK (paused_reason IN ('owner', 'insufficient_funds'));
ALTER TABLE price_feeds ADD CONSTRAINT price_feeds_paused_reason_when_paused
    CHECK (paused_reason IS NULL OR status = 'paused');
-- The clock's resume pass reads the feeds paused for want of funds, by owner.
CREATE INDEX idx_price_feeds_unfunded ON price_feeds(user_id)
    WHERE paused_reason = 'insufficient_funds';
