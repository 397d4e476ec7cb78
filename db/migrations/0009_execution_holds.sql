-- Executions are paid before they run: invoking (or a trigger firing) holds the most the
-- execution can cost (base fee + per-100 ms fee x its timeout) as a pending 'function'
-- charge; finishing settles it to what really ran (the rest refunded), and an execution the
-- service lost (its executor died) releases it. Executions without a hold are free.
ALTER TABLE executions ADD COLUMN hold_transaction_id BIGINT REFERENCES transactions(id);
