-- Fair share: a tenant has at most NSL_EXECUTIONS_PER_TENANT executions dispatched to the
-- executor (their job sent, or running) at once; the rest wait in PostgreSQL, queued with no
-- dispatched_at, and are dispatched in order as the tenant's slots free. Executions queued
-- before this migration had their job sent already.
ALTER TABLE executions ADD COLUMN dispatched_at TIMESTAMPTZ;
UPDATE executions SET dispatched_at = created_at WHERE status = 'queued';
CREATE INDEX idx_executions_waiting ON executions (user_id, id)
    WHERE status = 'queued' AND dispatched_at IS NULL;
CREATE INDEX idx_executions_in_flight ON executions (user_id)
    WHERE status = 'running' OR (status = 'queued' AND dispatched_at IS NOT NULL);
