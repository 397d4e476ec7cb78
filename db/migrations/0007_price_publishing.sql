-- Publishing price rounds on chain: each publication is an on-chain action the relay sends
-- (sign once, store, re-send the same bytes, settle from the chain), charged as 'pricefeed'.

-- The round an action publishes (NULL for a tenant's own calls); at most one action a round.
ALTER TABLE neo_actions ADD COLUMN price_round_id BIGINT
    REFERENCES price_rounds(id) ON DELETE SET NULL;
CREATE UNIQUE INDEX uq_neo_actions_price_round ON neo_actions(price_round_id)
    WHERE price_round_id IS NOT NULL;
-- The ledger type of the action's charge.
ALTER TABLE neo_actions ADD COLUMN charge_type VARCHAR(20) NOT NULL DEFAULT 'function';
ALTER TABLE neo_actions ADD CONSTRAINT neo_actions_charge_type_known
    CHECK (charge_type IN ('function', 'pricefeed'));
-- Witnessed by the service's publisher (the hot wallet) instead of the tenant's signer:
-- only for the service's own PriceFeed contract, only set by the price feed worker. (Not
-- tied to price_round_id by a constraint: that link goes when the feed is deleted.)
ALTER TABLE neo_actions ADD COLUMN as_publisher BOOLEAN NOT NULL DEFAULT false;

-- What a priced round did about publishing: 'not_due' (within the deviation, heartbeat not
-- reached), 'queued' (its action, found by price_round_id, tells the rest), 'skipped' (an
-- earlier publication still in flight, or nowhere to publish), 'unpaid' (the balance cannot
-- pay for it). NULL for rounds without a price. The reason says why, in words.
ALTER TABLE price_rounds ADD COLUMN publication VARCHAR(20);
ALTER TABLE price_rounds ADD COLUMN publication_reason TEXT;
ALTER TABLE price_rounds ADD CONSTRAINT price_rounds_publication_known
    CHECK (publication IN ('not_due', 'queued', 'skipped', 'unpaid'));

-- The relay's pending charges are both kinds of action.
DROP INDEX idx_transactions_pending_charges;
CREATE INDEX idx_transactions_pending_charges ON transactions(id)
    WHERE type IN ('function', 'pricefeed') AND status = 'pending';
