"""Each tenant's own Neo N3 signer account, created on first use.

Tenants authorize the signer in their contracts (``CheckWitness(signer)``); the relay adds it
to every transaction it sends for them as a second signer (``CalledByEntry``), behind the
hot wallet that pays the fees. The signer's private key is sealed to the relay's key
(``neosl.onchain.relaybox``): whoever creates it (the API, the relay) keeps it only long enough to
seal it, and only the relay can open it again.

Who commits: the caller.
"""

from __future__ import annotations

import secrets

from neo3.wallet.account import Account
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from neosl.errors import ServiceError
from neosl.models import NeoSigner
from neosl.neo.addresses import address_to_script_hash
from neosl.onchain import relaybox
from neosl.onchain.relaybox import RelayKey, RelayPublicKey


class SignersUnavailable(ServiceError):
    status = 503
    code = "signers_unavailable"


def get_or_create(session: Session, user_id: int, public: RelayPublicKey | None) -> NeoSigner:
    """The tenant's signer; made (and sealed to ``public``) if it has none yet.

    Concurrent first calls agree on one signer: the insert of the loser does nothing.

    Raises:
        SignersUnavailable: the tenant has no signer and no relay public key is configured.
    """
    signer = session.get(NeoSigner, user_id)
    if signer is not None:
        return signer
    if public is None:
        raise SignersUnavailable(
            "on-chain signers are not configured here (NSL_RELAY_PUBLIC_KEY is not set)"
        )
    private_key = _new_private_key()
    account = Account.from_private_key(private_key)
    address = str(account.address)
    session.execute(
        insert(NeoSigner)
        .values(
            user_id=user_id,
            address=address,
            script_hash=f"0x{address_to_script_hash(address)}",
            public_key=str(account.public_key),
            sealed_key=relaybox.seal(public, private_key, user_id, address),
            relay_key_id=public.id,
        )
        .on_conflict_do_nothing(index_elements=[NeoSigner.user_id])
    )
    return session.scalars(
        select(NeoSigner)
        .where(NeoSigner.user_id == user_id)
        .execution_options(populate_existing=True)
    ).one()


def open_signer(signer: NeoSigner, key: RelayKey) -> Account:
    """The signer's account with its private key (the relay only).

    Raises:
        relaybox.SignerKeyUnreadable: sealed to another key, or the row was altered.
    """
    if signer.relay_key_id != key.id:
        raise relaybox.SignerKeyUnreadable(
            f"the signer key of tenant {signer.user_id} is sealed to relay key "
            f"{signer.relay_key_id!r}, not {key.id!r}"
        )
    private_key = relaybox.open_sealed(key, signer.sealed_key, signer.user_id, signer.address)
    account = Account.from_private_key(private_key)
    if account.address != signer.address:
        raise relaybox.SignerKeyUnreadable(
            f"the signer key of tenant {signer.user_id} is not the key of {signer.address}"
        )
    return account


def _new_private_key() -> bytes:
    # A secp256r1 scalar: 1 <= k < n. 32 random bytes miss that range with odds of ~2^-32.
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    while True:
        candidate = secrets.token_bytes(32)
        if 0 < int.from_bytes(candidate, "big") < order:
            return candidate
