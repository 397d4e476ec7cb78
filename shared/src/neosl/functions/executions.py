"""How a finished execution is announced to whoever waits for it (``?wait=N``).

The executor pushes to a short-lived Redis list after the execution's terminal status is
committed; the API blocks on that list. A push that happens before anyone waits stays in the
list for a minute, so the waiter still sees it.
"""

from __future__ import annotations

from redis import Redis

_TTL_SECONDS = 60


def done_key(execution_id: int) -> str:
    return f"nsl:execution:done:{execution_id}"


def announce_done(redis: Redis, execution_id: int) -> None:
    """Wake anyone waiting for ``execution_id`` (call after the commit)."""
    key = done_key(execution_id)
    pipe = redis.pipeline()
    pipe.rpush(key, "1")
    pipe.expire(key, _TTL_SECONDS)
    pipe.execute()


def wait_done(redis: Redis, execution_id: int, seconds: float) -> bool:
    """Block up to ``seconds`` for the announcement; True if it came."""
    if seconds <= 0:
        return False
    return redis.blpop([done_key(execution_id)], timeout=seconds) is not None
