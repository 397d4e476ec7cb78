"""Fixed-window counters in Redis, shared by every API process."""

from __future__ import annotations

from redis import Redis


def hit(redis: Redis, key: str, limit: int, window_seconds: int) -> int | None:
    """Count one attempt under ``key``; return the seconds to wait if over ``limit``, else None."""
    pipe = redis.pipeline()
    # SET NX EX: the window starts at the first attempt and later ones do not extend it
    # (EXPIRE NX would do the same but needs Redis 7; the embedded server is 6.2).
    pipe.set(key, 0, ex=window_seconds, nx=True)
    pipe.incr(key)
    pipe.ttl(key)
    _, count, ttl = pipe.execute()
    if int(count) > limit:
        return max(int(ttl), 1)
    return None


def reset(redis: Redis, key: str) -> None:
    redis.delete(key)
