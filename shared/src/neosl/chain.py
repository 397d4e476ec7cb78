"""Chain subscriptions: which notifications the chain follower keeps, and whom it tells.

The follower (owned by the trigger-scheduler service) reads every block once, from a durable
cursor, and stores the notifications some subscription asks for in ``chain_events``; then
it sends each interested subscriber its ``notify`` job. A subscriber keeps its own cursor
over ``chain_events`` (see the gas ledger's deposits), so it can be down, slow or restarted
without the follower waiting for it or anything being lost or applied twice.

To subscribe, add a ``Subscription`` to ``subscriptions()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from neosl import jobs
from neosl.config import Settings
from neosl.neo.transfers import GAS_CONTRACT

FOLLOWER_CURSOR = "follower"


@dataclass(frozen=True)
class Subscription:
    name: str
    contract: str  # "0x" + big-endian hex, as the node shows it
    event_name: str
    notify: jobs.Job
    # For NEP-17 Transfer events: keep only transfers to this address.
    to_address: str | None = None


def subscriptions(settings: Settings) -> list[Subscription]:
    subs = []
    if settings.deposit_address is not None:
        subs.append(
            Subscription(
                name="ledger-deposits",
                contract=GAS_CONTRACT,
                event_name="Transfer",
                notify=jobs.APPLY_DEPOSITS,
                to_address=settings.deposit_address,
            )
        )
    return subs
