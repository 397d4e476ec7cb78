-- The markets each exchange source lists (its documented market-list endpoint, refreshed by
-- the pricefeed worker): a feed's named sources are checked against them, and each one's
-- market and symbol are kept with the feed. ``base``/``quote`` are our asset codes (BTC where
-- a venue says XBT); ``symbol`` is the venue's own name of the market.
CREATE TABLE source_markets (
    source VARCHAR(20) NOT NULL,
    base VARCHAR(10) NOT NULL,
    quote VARCHAR(10) NOT NULL,
    symbol VARCHAR(100) NOT NULL,
    PRIMARY KEY (source, base, quote)
);
CREATE INDEX source_markets_pair ON source_markets (base, quote);

-- One row per source: when its list was last asked for (``checked_at``, the refresh's
-- schedule), when a list was last stored (``listed_at``; NULL: never, and the built-in
-- catalog applies) with how many markets, and why the last attempt failed.
CREATE TABLE source_listings (
    source VARCHAR(20) PRIMARY KEY,
    checked_at TIMESTAMPTZ NOT NULL,
    listed_at TIMESTAMPTZ,
    markets INTEGER NOT NULL DEFAULT 0,
    error TEXT
);

-- A USD feed reads a source's USDT market only where its owner accepts USDT as USD. Feeds
-- defined before were defined under the rule that USD pairs read USDT markets.
ALTER TABLE price_feeds ADD COLUMN usdt_as_usd BOOLEAN NOT NULL DEFAULT false;
UPDATE price_feeds SET usdt_as_usd = true WHERE right(asset_pair, 4) = '/USD';
