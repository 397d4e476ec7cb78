-- Gas bank hardening: proven address ownership, operator-credited deposits and the facts a
-- deployment must keep consistent across its processes.

-- A registered address is proven by a signature over a one-time challenge. Rows from before
-- this change stay, unproven (verified_at NULL): deposits from them are not credited.
ALTER TABLE gas_accounts ADD COLUMN verified_at TIMESTAMP WITH TIME ZONE;
-- The compressed public key that proved the address (hex).
ALTER TABLE gas_accounts ADD COLUMN public_key VARCHAR(66);
-- Only a proven account holds an address for deposits; an unproven one no longer blocks the real owner.
DROP INDEX uq_gas_accounts_address;
CREATE UNIQUE INDEX uq_gas_accounts_address ON gas_accounts(address)
    WHERE deleted_at IS NULL AND verified_at IS NOT NULL;
-- A tenant still registers an address once.
CREATE UNIQUE INDEX uq_gas_accounts_user_address ON gas_accounts(user_id, address)
    WHERE deleted_at IS NULL;

-- One-time messages a tenant signs to prove it owns an address.
CREATE TABLE gas_address_challenges (
    id BIGSERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    address VARCHAR(42) NOT NULL,
    message TEXT NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    used_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_gas_address_challenges_open ON gas_address_challenges(user_id, address, id)
    WHERE used_at IS NULL;

-- Why a deposit was not credited, and the deposit row an operator credited it as.
ALTER TABLE unmatched_deposits ADD COLUMN reason VARCHAR(20) NOT NULL DEFAULT 'unregistered';
ALTER TABLE unmatched_deposits ADD CONSTRAINT unmatched_deposits_reason_known
    CHECK (reason IN ('unregistered', 'unverified', 'no_sender'));
ALTER TABLE unmatched_deposits ADD COLUMN credited_transaction_id BIGINT
    REFERENCES transactions(id) ON DELETE RESTRICT;

-- Values every process of a deployment must agree on (e.g. the deposit address), recorded by
-- the first process that starts, so one started with another value refuses to run.
CREATE TABLE deployment_facts (
    name VARCHAR(50) PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TRIGGER deployment_facts_updated_at BEFORE UPDATE ON deployment_facts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
