-- Triggers: what fires a function (a cron slot, a signed webhook delivery, a price condition
-- that held long enough, a contract event), and the history of every firing.

-- No API could create a trigger before this migration, so both tables are empty.
ALTER TABLE triggers ADD CONSTRAINT triggers_status_known CHECK (status IN ('active', 'paused'));
-- Cron: the next slot to fire (UTC). The scheduler fires rows whose slot has come, and moves
-- it on in the same transaction as the firing: the database, not a process, is the clock.
ALTER TABLE triggers ADD COLUMN next_fire_at TIMESTAMP WITH TIME ZONE;
CREATE INDEX idx_triggers_cron_due ON triggers(next_fire_at)
    WHERE trigger_type = 'cron' AND status = 'active';
-- Price: the feed the pair resolved to, and the evaluation's state (the price row evaluated
-- last, since when the condition holds, whether the trigger is armed).
ALTER TABLE triggers ADD COLUMN feed_id INTEGER REFERENCES price_feeds(id) ON DELETE SET NULL;
CREATE INDEX idx_triggers_feed_id ON triggers(feed_id);
ALTER TABLE triggers ADD COLUMN state JSONB NOT NULL DEFAULT '{}';
-- Webhook: the signing secret, sealed like a tenant secret (neosl.functions.secretbox) under the name
-- webhook_<id> and version hook_version (bumped by each rotation).
ALTER TABLE triggers ADD COLUMN hook_secret TEXT;
ALTER TABLE triggers ADD COLUMN hook_wrapped_key TEXT;
ALTER TABLE triggers ADD COLUMN hook_master_key_id VARCHAR(50);
ALTER TABLE triggers ADD COLUMN hook_version INTEGER NOT NULL DEFAULT 0;
-- Blockchain triggers are looked up by the chain follower for every block.
CREATE INDEX idx_triggers_chain_active ON triggers(id)
    WHERE trigger_type = 'blockchain' AND status = 'active';

-- One row per cause: cause_key names it (cron:<slot>, hook:<signature>, chain:<tx>:<n>,
-- price:<since>, manual:<key>), and (trigger_id, cause_key) is unique, so the same cause
-- never fires twice whatever retries, restarts or replicas happen.
ALTER TABLE trigger_events ADD COLUMN cause_key VARCHAR(200) NOT NULL;
ALTER TABLE trigger_events ADD COLUMN cause JSONB NOT NULL DEFAULT '{}';
ALTER TABLE trigger_events ADD COLUMN reason TEXT;
ALTER TABLE trigger_events ADD CONSTRAINT trigger_events_status_known
    CHECK (status IN ('fired', 'skipped', 'failed'));
ALTER TABLE trigger_events ADD CONSTRAINT trigger_events_trigger_id_cause_key_key
    UNIQUE (trigger_id, cause_key);
-- A trigger's history, newest first.
CREATE INDEX idx_trigger_events_trigger_id_id ON trigger_events(trigger_id, id);
DROP INDEX idx_trigger_events_trigger_id;

-- Public price feeds: an operator's feeds every tenant may read and trigger on.
ALTER TABLE price_feeds ADD COLUMN public BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX idx_price_feeds_public_pair ON price_feeds(asset_pair) WHERE public;
