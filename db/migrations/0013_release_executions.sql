-- Fair share in one round trip: release_executions(lock_class, tenant, share) takes the
-- tenant's dispatch lock, then counts and dispatches in a statement of its own. In a VOLATILE
-- function each statement takes a fresh snapshot, so the count sees what a concurrent release
-- committed while this one waited for the lock: two releases never exceed the share. The
-- function's plan is kept by the session; the two statements it replaces were sent and
-- answered one after the other on the path of every invoke and every finish.
CREATE FUNCTION release_executions(lock_class integer, tenant integer, share integer)
RETURNS SETOF bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_class, tenant);
    RETURN QUERY
    WITH busy AS (
        SELECT count(*) AS n FROM executions
        WHERE user_id = tenant
          AND (status = 'running' OR (status = 'queued' AND dispatched_at IS NOT NULL))
    ), pick AS (
        SELECT e.id FROM executions e
        WHERE e.user_id = tenant AND e.status = 'queued' AND e.dispatched_at IS NULL
        ORDER BY e.id
        LIMIT GREATEST(share - (SELECT n FROM busy), 0)
        FOR UPDATE OF e SKIP LOCKED
    )
    UPDATE executions SET dispatched_at = clock_timestamp()
    FROM pick WHERE executions.id = pick.id
    RETURNING executions.id;
END
$$;
