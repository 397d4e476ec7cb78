-- Price rounds run by the pricefeed worker from its queue: the clock records a due slot's
-- round as 'queued' and sends it; the worker that takes the message claims it
-- (queued -> running) before asking any source, so a redelivered message runs nothing.
-- A queued round's started_at is when it was queued; claiming it sets it to when it started.
ALTER TABLE price_rounds DROP CONSTRAINT price_rounds_status_known;
ALTER TABLE price_rounds ADD CONSTRAINT price_rounds_status_known
    CHECK (status IN ('queued', 'running', 'priced', 'failed'));
