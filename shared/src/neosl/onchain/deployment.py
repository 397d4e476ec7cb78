"""Facts every process of a deployment must agree on, recorded in the database.

A process configured differently from the rest (e.g. a chain follower started with another
deposit address) would silently do the wrong thing for good: pass blocks without recording
their deposits. So the first process records what it follows, and any process that sees a
different value refuses to go on until an operator settles it (``neosl chain subscriptions``).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from neosl.config import ConfigError
from neosl.models import DeploymentFact

FOLLOW_PREFIX = "follow:"


class Disagreement(ConfigError):
    """This process's configuration differs from what the deployment recorded."""


def followed(session: Session) -> dict[str, str]:
    """What the deployment's chain follower records notifications for: name → target."""
    rows = session.scalars(
        select(DeploymentFact).where(DeploymentFact.name.startswith(FOLLOW_PREFIX))
    ).all()
    return {row.name.removeprefix(FOLLOW_PREFIX): row.value for row in rows}


def agree_on_followed(session: Session, wanted: Mapping[str, str]) -> None:
    """Record ``wanted`` (subscription name → target) or check it against the record.

    A subscription recorded before must still be wanted with the same target; a new one is
    recorded. The caller commits.

    Raises:
        Disagreement: a recorded subscription is missing from ``wanted`` or has another
            target (the message says which and how to settle it).
    """
    # Record first, then compare: of two processes starting at once with different
    # targets, one records its own and the other then sees the disagreement.
    for name, target in wanted.items():
        session.execute(
            insert(DeploymentFact)
            .values(name=FOLLOW_PREFIX + name, value=target)
            .on_conflict_do_nothing()
        )
    for name, target in followed(session).items():
        if name not in wanted:
            raise Disagreement(
                f"this deployment follows the chain for {name!r} ({target}), but this "
                f"process has no such subscription (is NSL_DEPOSIT_ADDRESS set?). If that "
                f"is on purpose, run `neosl chain subscriptions --forget {name}`"
            )
        if wanted[name] != target:
            raise Disagreement(
                f"this deployment follows the chain for {name!r} at {target}, but this "
                f"process is configured with {wanted[name]}. If the change is on purpose, "
                f"run `neosl chain subscriptions --forget {name}` and restart"
            )


def forget_followed(session: Session, name: str) -> bool:
    """Drop a recorded subscription; True if there was one. The caller commits."""
    result = session.execute(
        delete(DeploymentFact).where(DeploymentFact.name == FOLLOW_PREFIX + name)
    )
    return bool(getattr(result, "rowcount", 0))
