-- Gas bank: unambiguous deposit addresses, a default account for charges, an idempotent
-- and auditable ledger, the chain follower's durable cursor and the API's idempotency keys.

-- Removing an account hides it; its ledger history stays (the design's CASCADE would erase it).
ALTER TABLE gas_accounts ADD COLUMN deleted_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE transactions DROP CONSTRAINT transactions_account_id_fkey;
ALTER TABLE transactions ADD CONSTRAINT transactions_account_id_fkey
    FOREIGN KEY (account_id) REFERENCES gas_accounts(id) ON DELETE RESTRICT;
-- Per-tenant uniqueness is replaced by the global one below (which must skip removed accounts).
ALTER TABLE gas_accounts DROP CONSTRAINT gas_accounts_user_id_address_key;

-- A deposit is credited by its sender address, so an address may belong to one tenant only.
CREATE UNIQUE INDEX uq_gas_accounts_address ON gas_accounts(address) WHERE deleted_at IS NULL;

ALTER TABLE gas_accounts ADD COLUMN is_default BOOLEAN NOT NULL DEFAULT FALSE;
-- At most one default account per tenant: charges must know which balance to use.
CREATE UNIQUE INDEX uq_gas_accounts_default ON gas_accounts(user_id)
    WHERE is_default AND deleted_at IS NULL;

-- 'refund' credits back a failed withdrawal as its own row, so history is never rewritten.
ALTER TABLE transactions DROP CONSTRAINT transactions_type_known;
ALTER TABLE transactions ADD CONSTRAINT transactions_type_known
    CHECK (type IN ('deposit', 'withdraw', 'function', 'pricefeed', 'refund'));
ALTER TABLE transactions ADD CONSTRAINT transactions_status_known
    CHECK (status IN ('pending', 'confirmed', 'failed'));

-- The caller's idempotency reference of a charge (e.g. an execution id) or the withdrawal a refund undoes.
ALTER TABLE transactions ADD COLUMN reference VARCHAR(200);
-- A deposit is one Transfer notification: (tx_hash, notification_index) names it uniquely.
ALTER TABLE transactions ADD COLUMN notification_index INTEGER;
ALTER TABLE transactions ADD COLUMN block_index BIGINT;
-- Withdrawals: the signed transaction is stored before it is sent, so a crash can only ever
-- re-send the very same transaction (same hash), never build a second one.
ALTER TABLE transactions ADD COLUMN raw_tx TEXT;
ALTER TABLE transactions ADD COLUMN valid_until_block BIGINT;
ALTER TABLE transactions ADD COLUMN sent_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE transactions ADD COLUMN failure_reason TEXT;
ALTER TABLE transactions ADD COLUMN updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP;
CREATE TRIGGER transactions_updated_at BEFORE UPDATE ON transactions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE UNIQUE INDEX uq_transactions_charge_reference ON transactions(user_id, type, reference)
    WHERE type IN ('function', 'pricefeed', 'refund');
CREATE UNIQUE INDEX uq_transactions_deposit ON transactions(tx_hash, notification_index)
    WHERE type = 'deposit';
-- The withdrawal worker scans for unfinished withdrawals.
CREATE INDEX idx_transactions_pending_withdrawals ON transactions(id)
    WHERE type = 'withdraw' AND status = 'pending';
CREATE INDEX idx_transactions_status ON transactions(status);

-- GAS sent to the deposit address from an address no tenant registered: kept for operators.
CREATE TABLE unmatched_deposits (
    id BIGSERIAL PRIMARY KEY,
    tx_hash VARCHAR(66) NOT NULL,
    notification_index INTEGER NOT NULL,
    block_index BIGINT NOT NULL,
    from_address VARCHAR(42),
    amount DECIMAL(20, 8) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (tx_hash, notification_index)
);

-- Durable positions: the chain follower's next block, and each subscriber's last event.
CREATE TABLE chain_cursors (
    name VARCHAR(50) PRIMARY KEY,
    position BIGINT NOT NULL,
    chain_height BIGINT,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Notifications the follower saw that some subscriber asked for, in chain order.
CREATE TABLE chain_events (
    id BIGSERIAL PRIMARY KEY,
    block_index BIGINT NOT NULL,
    tx_hash VARCHAR(66) NOT NULL,
    notification_index INTEGER NOT NULL,
    contract VARCHAR(42) NOT NULL,
    event_name VARCHAR(100) NOT NULL,
    state JSONB NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (tx_hash, notification_index)
);
CREATE INDEX idx_chain_events_contract_event ON chain_events(contract, event_name, id);

-- Replays of POSTs that carry an Idempotency-Key header.
CREATE TABLE idempotency_keys (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key VARCHAR(200) NOT NULL,
    request_hash CHAR(64) NOT NULL,
    status_code INTEGER NOT NULL,
    response JSONB NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idx_idempotency_keys_created_at ON idempotency_keys(created_at);
