-- Price feeds: what a feed reads and publishes, its round schedule, and every round's outcome.

-- No API could create a feed before this migration, so the table is empty.
-- sources: [{"name": "binance", "weight": "1"}, …], normalised by the API.
ALTER TABLE price_feeds ADD CONSTRAINT price_feeds_status_known
    CHECK (status IN ('active', 'paused'));
ALTER TABLE price_feeds ADD CONSTRAINT price_feeds_aggregation_known
    CHECK (aggregation IN ('median', 'mean', 'trimmed_mean', 'weighted'));
ALTER TABLE price_feeds ADD CONSTRAINT price_feeds_deviation_positive CHECK (deviation > 0);
-- Publish at least this often (seconds), whatever the price does.
ALTER TABLE price_feeds ADD COLUMN heartbeat INTEGER NOT NULL DEFAULT 3600;
ALTER TABLE price_feeds ADD CONSTRAINT price_feeds_heartbeat_covers_frequency
    CHECK (heartbeat >= frequency);
-- Fewer sources left after failures and outliers: the round fails instead of pricing.
ALTER TABLE price_feeds ADD COLUMN min_sources INTEGER NOT NULL DEFAULT 1;
ALTER TABLE price_feeds ADD CONSTRAINT price_feeds_min_sources_positive CHECK (min_sources >= 1);
-- Where rounds are published: NULL for the service's PriceFeed contract, else
-- {"contract": "0x…", "method": "…"} of the tenant's own, signed by the tenant's signer.
ALTER TABLE price_feeds ADD COLUMN target JSONB;
-- The next round's scheduled time: computed from the schedule, never from when the last
-- round ended (no drift).
ALTER TABLE price_feeds ADD COLUMN next_round_at TIMESTAMP WITH TIME ZONE;
CREATE INDEX idx_price_feeds_due ON price_feeds(next_round_at) WHERE status = 'active';
-- History and OHLC read a feed's prices by time.
CREATE INDEX idx_price_data_feed_id_timestamp ON price_data(feed_id, timestamp);

-- Every round, priced or not: what each source answered (value, latency, error or why it
-- was rejected), the price if enough sources were left, and what became of publishing it.
CREATE TABLE price_rounds (
    id BIGSERIAL PRIMARY KEY,
    feed_id INTEGER NOT NULL REFERENCES price_feeds(id) ON DELETE CASCADE,
    -- The slot it ran for; (feed_id, scheduled_at) is unique: a slot runs once.
    scheduled_at TIMESTAMP WITH TIME ZONE NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    finished_at TIMESTAMP WITH TIME ZONE,
    status VARCHAR(20) NOT NULL,
    reason TEXT,
    price DECIMAL(20, 8),
    sources_used INTEGER,
    source_data JSONB NOT NULL DEFAULT '[]',
    price_data_id BIGINT REFERENCES price_data(id) ON DELETE SET NULL,
    CONSTRAINT price_rounds_status_known CHECK (status IN ('running', 'priced', 'failed')),
    UNIQUE (feed_id, scheduled_at)
);
CREATE INDEX idx_price_rounds_feed_id_id ON price_rounds(feed_id, id);
