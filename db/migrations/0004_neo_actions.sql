-- On-chain actions: each tenant's own Neo N3 signer, and the contract calls the relay sends
-- for tenants (from functions' neo.invoke or POST /v1/neo/actions).

-- One signer account per tenant. The private key is sealed to the relay's key (X25519 sealed
-- box, AES-256-GCM; see neosl.onchain.relaybox): whoever creates a signer cannot open it afterwards,
-- only the relaying service can. relay_key_id names the relay key it is sealed to.
CREATE TABLE neo_signers (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    address VARCHAR(42) NOT NULL UNIQUE,
    script_hash VARCHAR(42) NOT NULL UNIQUE,
    public_key VARCHAR(66) NOT NULL,
    sealed_key TEXT NOT NULL,
    relay_key_id VARCHAR(50) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- An action: one contract call the tenant wants on chain. Its money and its transaction
-- live in the transactions row it is paid by (type 'function', reference 'action:<id>'),
-- which holds the signed bytes, hash and valid_until_block exactly as a withdrawal does.
CREATE TABLE neo_actions (
    id BIGSERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- The execution that asked for it (neo.invoke); NULL for POST /v1/neo/actions.
    execution_id BIGINT REFERENCES executions(id) ON DELETE SET NULL,
    -- Its position among its execution's actions.
    position INTEGER,
    contract VARCHAR(42) NOT NULL,
    method VARCHAR(100) NOT NULL,
    -- The arguments in their canonical JSON form (neosl.neo.params.to_json).
    args JSONB NOT NULL DEFAULT '[]',
    status VARCHAR(20) NOT NULL DEFAULT 'queued',
    failure_reason TEXT,
    -- The VM's state on chain (HALT or FAULT) once settled.
    vm_state VARCHAR(10),
    transaction_id BIGINT REFERENCES transactions(id),
    tx_hash VARCHAR(66),
    block_index BIGINT,
    -- Fees in GAS: what the transaction reserved (system + network), what the chain took
    -- (gas consumed + network fee), the service fee, and the total charged.
    system_fee DECIMAL(20, 8),
    network_fee DECIMAL(20, 8),
    gas_consumed DECIMAL(20, 8),
    service_fee DECIMAL(20, 8),
    fee_charged DECIMAL(20, 8),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    settled_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT neo_actions_status_known
        CHECK (status IN ('queued', 'pending', 'confirmed', 'failed')),
    CONSTRAINT neo_actions_contract_format CHECK (contract ~ '^0x[0-9a-f]{40}$')
);
CREATE TRIGGER neo_actions_updated_at BEFORE UPDATE ON neo_actions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX idx_neo_actions_user_id_id ON neo_actions(user_id, id);
CREATE INDEX idx_neo_actions_execution_id ON neo_actions(execution_id);
CREATE UNIQUE INDEX uq_neo_actions_execution_position ON neo_actions(execution_id, position)
    WHERE execution_id IS NOT NULL;
-- The relay's work list.
CREATE INDEX idx_neo_actions_open ON neo_actions(id) WHERE status IN ('queued', 'pending');

-- Pending charges (an action's fees are held while its transaction is in flight) are
-- settled by the relay, like pending withdrawals.
CREATE INDEX idx_transactions_pending_charges ON transactions(id)
    WHERE type = 'function' AND status = 'pending';
