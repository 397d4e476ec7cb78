-- Functions: envelope-encrypted secrets, immutable function versions and executions that
-- record what they ran, for whom, how it ended and what it cost.

-- Secrets: value = base64(nonce || AES-256-GCM ciphertext) under a random data key of this
-- version; wrapped_key = that data key wrapped by the master key named master_key_id.
-- No API could store a secret before this migration, so the table is empty.
ALTER TABLE secrets ADD COLUMN wrapped_key TEXT NOT NULL;
ALTER TABLE secrets ADD COLUMN master_key_id VARCHAR(50) NOT NULL;
-- Rotation re-wraps the rows of old master keys.
CREATE INDEX idx_secrets_master_key_id ON secrets(master_key_id);
ALTER TABLE secrets ADD CONSTRAINT secrets_name_format CHECK (name ~ '^[A-Za-z0-9_]{1,100}$');

ALTER TABLE functions ADD CONSTRAINT functions_status_known CHECK (status IN ('active', 'paused'));
-- The sandbox's bounds: 1-300 s, 16-512 MB.
ALTER TABLE functions ADD CONSTRAINT functions_limits_range
    CHECK (timeout BETWEEN 1 AND 300 AND memory BETWEEN 16 AND 512);

-- Every version of a function's code, limits and grants is kept; an execution names the one
-- it ran.
CREATE TABLE function_versions (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    source_code TEXT NOT NULL,
    timeout INTEGER NOT NULL,
    memory INTEGER NOT NULL,
    -- The secret names this version may read, sorted.
    secrets JSONB NOT NULL DEFAULT '[]',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (function_id, version)
);

-- No API could create an execution before this migration, so the table is empty.
ALTER TABLE executions ADD COLUMN user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE executions ADD COLUMN version INTEGER NOT NULL;
-- The limit the execution runs under (the reaper's deadline is start_time + timeout).
ALTER TABLE executions ADD COLUMN timeout INTEGER NOT NULL;
ALTER TABLE executions ADD COLUMN input JSONB;
-- The trigger event that fired it; NULL when invoked directly.
ALTER TABLE executions ADD COLUMN trigger JSONB;
-- start_time is when it started running, not when it was queued (created_at).
ALTER TABLE executions ALTER COLUMN start_time DROP DEFAULT;
-- The executor process that ran it (host:pid), for operators.
ALTER TABLE executions ADD COLUMN worker VARCHAR(200);
-- Billing: what was charged, or why not (charged, duplicate, insufficient_funds, no_account,
-- free); never lost silently.
ALTER TABLE executions ADD COLUMN charge_status VARCHAR(20);
ALTER TABLE executions ADD COLUMN charge_amount DECIMAL(20, 8);
ALTER TABLE executions ADD COLUMN updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP;
CREATE TRIGGER executions_updated_at BEFORE UPDATE ON executions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
ALTER TABLE executions ADD CONSTRAINT executions_status_known
    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'timeout'));
-- A tenant's executions, newest first.
CREATE INDEX idx_executions_user_id_id ON executions(user_id, id);
-- The reaper: executions queued too long (their message was lost) or running past their deadline.
CREATE INDEX idx_executions_queued ON executions(created_at) WHERE status = 'queued';
CREATE INDEX idx_executions_running ON executions(start_time) WHERE status = 'running';
-- Retention deletes by age.
CREATE INDEX idx_executions_created_at ON executions(created_at);
