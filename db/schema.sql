-- Neo N3 Service Layer: the baseline schema (migration version 0000).
-- Applied by `neosl db upgrade`; later changes go in db/migrations/NNNN_name.sql.
-- Deviations from the original design carry a one-line comment saying why.

-- Keeps updated_at honest whichever client writes the row.
CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE users (
    id SERIAL PRIMARY KEY,
    username VARCHAR(50) UNIQUE NOT NULL,
    email VARCHAR(255) UNIQUE NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    -- SHA-256 (hex) of the API key: a stolen database must not hand out working keys.
    api_key_hash CHAR(64) UNIQUE,
    -- NOT NULL: a NULL flag would be neither active nor inactive.
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- Stored lower-cased so "Bob@x.io" and "bob@x.io" cannot be two accounts.
    CONSTRAINT users_email_lower CHECK (email = lower(email)),
    CONSTRAINT users_username_format CHECK (username ~ '^[A-Za-z0-9_.-]{3,50}$')
);

CREATE INDEX idx_users_username ON users(username);
CREATE INDEX idx_users_email ON users(email);
CREATE INDEX idx_users_api_key ON users(api_key_hash);
-- Usernames are unique regardless of case, so "Alice" cannot impersonate "alice".
CREATE UNIQUE INDEX uq_users_username_lower ON users(lower(username));
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE functions (
    id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name VARCHAR(100) NOT NULL,
    description TEXT,
    source_code TEXT NOT NULL,
    -- NOT NULL on version/status/timeout/memory/count: code reads them as always present.
    version INTEGER NOT NULL DEFAULT 1,
    status VARCHAR(20) NOT NULL DEFAULT 'active',
    timeout INTEGER NOT NULL DEFAULT 30,
    memory INTEGER NOT NULL DEFAULT 128,
    execution_count INTEGER NOT NULL DEFAULT 0,
    last_execution TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE(user_id, name),
    -- Limits are enforced by the sandbox; non-positive ones would disable it.
    CONSTRAINT functions_limits_positive CHECK (timeout > 0 AND memory > 0 AND version > 0)
);

CREATE INDEX idx_functions_user_id ON functions(user_id);
CREATE INDEX idx_functions_status ON functions(status);
CREATE TRIGGER functions_updated_at BEFORE UPDATE ON functions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE secrets (
    id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name VARCHAR(100) NOT NULL,
    -- Ciphertext only (AES-256-GCM with NSL_SECRETS_KEY); plaintext never reaches the database.
    value TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE(user_id, name)
);

CREATE INDEX idx_secrets_user_id ON secrets(user_id);
CREATE TRIGGER secrets_updated_at BEFORE UPDATE ON secrets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE function_secrets (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    secret_name VARCHAR(100) NOT NULL,
    PRIMARY KEY (function_id, secret_name)
);

CREATE INDEX idx_function_secrets_function_id ON function_secrets(function_id);

CREATE TABLE executions (
    -- BIGINT: an append-only log of every run outgrows INTEGER on a busy service.
    id BIGSERIAL PRIMARY KEY,
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    status VARCHAR(20) NOT NULL,
    start_time TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    end_time TIMESTAMP WITH TIME ZONE,
    duration INTEGER,
    result JSONB,
    error TEXT,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_executions_function_id ON executions(function_id);
CREATE INDEX idx_executions_status ON executions(status);
CREATE INDEX idx_executions_start_time ON executions(start_time);

CREATE TABLE execution_logs (
    -- BIGINT: several log lines per execution outgrow INTEGER first.
    id BIGSERIAL PRIMARY KEY,
    execution_id BIGINT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    timestamp TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    level VARCHAR(20) NOT NULL,
    message TEXT NOT NULL
);

CREATE INDEX idx_execution_logs_execution_id ON execution_logs(execution_id);
CREATE INDEX idx_execution_logs_timestamp ON execution_logs(timestamp);

CREATE TABLE triggers (
    id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    name VARCHAR(100) NOT NULL,
    description TEXT,
    trigger_type VARCHAR(50) NOT NULL,
    trigger_config JSONB NOT NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'active',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE(user_id, name),
    -- An unknown type would be stored but never fire.
    CONSTRAINT triggers_type_known CHECK (trigger_type IN ('cron', 'price', 'blockchain', 'webhook'))
);

CREATE INDEX idx_triggers_user_id ON triggers(user_id);
CREATE INDEX idx_triggers_function_id ON triggers(function_id);
CREATE INDEX idx_triggers_trigger_type ON triggers(trigger_type);
CREATE INDEX idx_triggers_status ON triggers(status);
CREATE TRIGGER triggers_updated_at BEFORE UPDATE ON triggers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE trigger_events (
    id BIGSERIAL PRIMARY KEY,
    trigger_id INTEGER NOT NULL REFERENCES triggers(id) ON DELETE CASCADE,
    timestamp TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    status VARCHAR(20) NOT NULL,
    -- SET NULL: deleting an execution must not fail on, or erase, the trigger's history.
    execution_id BIGINT REFERENCES executions(id) ON DELETE SET NULL
);

CREATE INDEX idx_trigger_events_trigger_id ON trigger_events(trigger_id);
CREATE INDEX idx_trigger_events_timestamp ON trigger_events(timestamp);

CREATE TABLE price_feeds (
    id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    asset_pair VARCHAR(20) NOT NULL,
    frequency INTEGER NOT NULL,
    sources JSONB NOT NULL,
    aggregation VARCHAR(20) NOT NULL DEFAULT 'median',
    deviation DECIMAL(10, 2) NOT NULL DEFAULT 0.5,
    status VARCHAR(20) NOT NULL DEFAULT 'active',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- A zero or negative period would schedule updates in a tight loop.
    CONSTRAINT price_feeds_frequency_positive CHECK (frequency > 0)
);

CREATE INDEX idx_price_feeds_user_id ON price_feeds(user_id);
CREATE INDEX idx_price_feeds_asset_pair ON price_feeds(asset_pair);
CREATE INDEX idx_price_feeds_status ON price_feeds(status);
CREATE TRIGGER price_feeds_updated_at BEFORE UPDATE ON price_feeds
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE price_data (
    -- BIGINT: one row per feed per update period outgrows INTEGER.
    id BIGSERIAL PRIMARY KEY,
    feed_id INTEGER NOT NULL REFERENCES price_feeds(id) ON DELETE CASCADE,
    timestamp TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    price DECIMAL(20, 8) NOT NULL,
    sources_used INTEGER NOT NULL,
    source_data JSONB
);

CREATE INDEX idx_price_data_feed_id ON price_data(feed_id);
CREATE INDEX idx_price_data_timestamp ON price_data(timestamp);

CREATE TABLE gas_accounts (
    id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    address VARCHAR(42) NOT NULL,
    -- NOT NULL and never negative: the ledger must not be able to owe GAS it does not hold.
    balance DECIMAL(20, 8) NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE(user_id, address)
);

CREATE INDEX idx_gas_accounts_user_id ON gas_accounts(user_id);
CREATE INDEX idx_gas_accounts_address ON gas_accounts(address);
CREATE TRIGGER gas_accounts_updated_at BEFORE UPDATE ON gas_accounts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE transactions (
    id BIGSERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL REFERENCES gas_accounts(id) ON DELETE CASCADE,
    type VARCHAR(20) NOT NULL,
    -- Always positive; the type says which way the money moved.
    amount DECIMAL(20, 8) NOT NULL CHECK (amount > 0),
    tx_hash VARCHAR(66),
    status VARCHAR(20) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- A ledger row of an unknown kind could not be summed into a balance.
    CONSTRAINT transactions_type_known CHECK (type IN ('deposit', 'withdraw', 'function', 'pricefeed'))
);

CREATE INDEX idx_transactions_user_id ON transactions(user_id);
CREATE INDEX idx_transactions_account_id ON transactions(account_id);
CREATE INDEX idx_transactions_type ON transactions(type);
CREATE INDEX idx_transactions_created_at ON transactions(created_at);
