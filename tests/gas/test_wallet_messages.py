"""Signed wallet messages: the bytes wallets sign, and proof of address ownership."""

from __future__ import annotations

import contextlib
import random
import secrets

import pytest
from neo3.core import cryptography
from neo3.wallet.account import Account

from neosl_api.messages import (
    MAX_MESSAGE_CHARS,
    MAX_SALT_CHARS,
    InvalidProof,
    SignedMessage,
    address_of_public_key,
    sign_message,
    verify_ownership,
    wallet_message_bytes,
)

# secp256r1 group order.
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

# Real signatures from CityOfZion/neon-dappkit, packages/neon-dappkit/test/NeonSigner.spec.ts
# ("can verify" and "can verify legacy messages"): a salted wallet message as NeoLine and
# neon-dappkit produce it. Both happen to carry a high s. The addresses are what the keys'
# single-signature accounts are (checked against neo-mamba's Account below).
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE2NDM0Nzc2NjMsImlhdCI6MTY0MzM5MTI2M30"
    ".rS1_ssR06LBgxtH1PHbwL0mzeWV9PhmTHGz2HIROJO4"
)
DAPPKIT_JWT = {
    "address": "NbnjKGMBJzJ6j5PHeYhjJDaQ5Vy5UYu4Fv",
    "message": JWT,
    "public_key_hex": "031757edb62014dea820a0b33a156f6a59fc12bd966202f0e49357c81f26f5de34",
    "signature_hex": "aeb234ed1639e9fcc95a102633b1c70ca9f9b97e9592cc74bfc40cbc7fefdb19"
    "ae8c6b49ebd410dbcbeec6b5906e503d528e34cd5098cc7929dbcbbaf23c5d77",
    "salt": "052a55a8d56b73b342a8e41da3050b09",
}
# The test file gives the signed bytes too ("messageHex"): 0xa0 = 160 = 32 + 128 bytes.
DAPPKIT_JWT_BYTES = (
    "010001f0a0303532613535613864353662373362333432613865343164613330353062303965794a6862"
    "4763694f694a49557a49314e694973496e523563434936496b705856434a392e65794a6c654841694f6a"
    "45324e444d304e7a63324e6a4d73496d6c68644349364d5459304d7a4d354d5449324d33302e72533"
    "15f73735230364c426778744831504862774c306d7a6557563950686d5448477a324849524f4a4f340000"
)
DAPPKIT_HELLO = {
    "address": "NdcgUNGNNs9n6N5A6uumkWg9vP4BGGNwko",
    "message": "Hello World",
    "public_key_hex": "0297f256ad8c5361dca4e931f7c69568fbb14b0b203062678d160dbaeff88e9e53",
    "signature_hex": "ba32f6a69e80e7e0ddc8c18324988769cd785f0e36f6ca5b7c0ab49149b89a27"
    "f9173fcfa8404386dd69bc14605ed8440e4970da0bda802b58a673fc5d00f3d4",
    "salt": "1b7fbf00b4f43ed9afd51d794e3470b8",
}

# Keys and N3 addresses from CityOfZion/neon-js packages/neon-core/__tests__/wallet/core.ts.
NEON_JS_KEYS = [
    (
        "L1QqQJnpBwbsPGAuutuzPTac8piqvbR1HRjrY5qHup48TBCBFe4g",
        "02028a99826edc0c97d18e22b6932373d908d323aa7f92656a77ec26e8861699ef",
        "NPTmAHDxo6Pkyic8Nvu3kwyXoYJCvcCB6i",
    ),
    (
        "L2QTooFoDFyRFTxmtiVHt5CfsXfVnexdbENGDkkrrgTTryiLsPMG",
        "031d8e1630ce640966967bc6d95223d21f44304133003140c3b52004dc981349c9",
        "NMBfzaEq2c5zodiNbLPoohVENARMbJim1r",
    ),
]


def _wrap(payload_hex: str, length_hex: str) -> bytes:
    return bytes.fromhex("010001f0" + length_hex + payload_hex + "0000")


def _flip_s(signature_hex: str) -> str:
    """The other valid form of an ECDSA signature: (r, n - s)."""
    sig = bytes.fromhex(signature_hex)
    s = int.from_bytes(sig[32:], "big")
    return (sig[:32] + (N - s).to_bytes(32, "big")).hex()


def _is_high_s(signature_hex: str) -> bool:
    return int(signature_hex[64:], 16) > N // 2


@pytest.fixture
def signed() -> tuple[SignedMessage, str]:
    """A fresh key's signature over a salted challenge, and the challenge."""
    wif = Account.private_key_to_wif(secrets.token_bytes(32))
    message = "Register this address with the gas bank: nonce 4f1c"
    return sign_message(wif, message, salt="9f86d081884c7d659a2feaa0c55ad015"), message


# --- the bytes wallets sign ------------------------------------------------------------


def test_short_message_layout() -> None:
    assert wallet_message_bytes("Hello") == _wrap("48656c6c6f", "05")
    assert wallet_message_bytes("") == bytes.fromhex("010001f0000000")


def test_salt_goes_in_front_as_text_and_counts_in_the_length() -> None:
    # 32 hex characters of salt + 11 of message = 43 = 0x2b bytes.
    salt = "1b7fbf00b4f43ed9afd51d794e3470b8"
    expected = _wrap(salt.encode().hex() + "48656c6c6f20576f726c64", "2b")
    assert wallet_message_bytes("Hello World", salt) == expected
    assert wallet_message_bytes("Hello World", salt) == wallet_message_bytes(salt + "Hello World")


def test_matches_the_bytes_neon_dappkit_signed() -> None:
    assert wallet_message_bytes(JWT, DAPPKIT_JWT["salt"]).hex() == DAPPKIT_JWT_BYTES


@pytest.mark.parametrize(
    ("length", "var_int"),
    [
        (0xFC, "fc"),
        (0xFD, "fdfd00"),
        (300, "fd2c01"),
        (0xFFFF, "fdffff"),
        (0x10000, "fe00000100"),
    ],
)
def test_long_messages_use_neo_var_int(length: int, var_int: str) -> None:
    message = "a" * length
    assert wallet_message_bytes(message) == _wrap(message.encode().hex(), var_int)


def test_unicode_is_utf8_and_the_length_counts_bytes() -> None:
    message = "héllo €"  # 7 characters, 10 bytes in UTF-8
    assert wallet_message_bytes(message) == _wrap("68c3a96c6c6f20e282ac", "0a")
    # 127 three-byte characters: 127 characters but 381 bytes, so a 0xfd var-int.
    wide = "€" * 127
    assert wallet_message_bytes(wide) == _wrap("e282ac" * 127, "fd7d01")


# --- addresses of keys -----------------------------------------------------------------


@pytest.mark.parametrize(("wif", "public_key", "address"), NEON_JS_KEYS)
def test_address_of_public_key_matches_neon_js_and_neo_mamba(
    wif: str, public_key: str, address: str
) -> None:
    assert address_of_public_key(public_key) == address
    account = Account.from_wif(wif)
    assert str(account.public_key) == public_key
    assert account.address == address
    # The single-signature verification script neo-mamba keeps for the account.
    assert account.contract is not None
    assert account.contract.script == bytes.fromhex(f"0c21{public_key}4156e7b327")


def test_address_of_public_key_matches_neo_mamba_for_fresh_keys() -> None:
    for _ in range(20):
        account = Account.from_private_key(secrets.token_bytes(32))
        assert address_of_public_key(str(account.public_key)) == account.address


def test_dapp_kit_vector_addresses_are_those_of_their_keys() -> None:
    for vector in (DAPPKIT_JWT, DAPPKIT_HELLO):
        assert address_of_public_key(vector["public_key_hex"]) == vector["address"]


def test_upper_case_hex_is_accepted() -> None:
    _, public_key, address = NEON_JS_KEYS[0]
    assert address_of_public_key(public_key.upper()) == address


# --- proofs ----------------------------------------------------------------------------


@pytest.mark.parametrize("vector", [DAPPKIT_JWT, DAPPKIT_HELLO], ids=["jwt", "hello"])
def test_real_wallet_signatures_verify_in_both_s_forms(vector: dict[str, str]) -> None:
    assert _is_high_s(vector["signature_hex"])
    verify_ownership(**vector)
    low = {**vector, "signature_hex": _flip_s(vector["signature_hex"])}
    assert not _is_high_s(low["signature_hex"])
    verify_ownership(**low)


def test_round_trip_with_salt(signed: tuple[SignedMessage, str]) -> None:
    proof, message = signed
    assert proof.salt is not None
    verify_ownership(proof.address, message, proof.public_key, proof.signature, proof.salt)


def test_round_trip_without_salt() -> None:
    wif, _, address = NEON_JS_KEYS[1]
    proof = sign_message(wif, "Proof for the gas bank ✓")
    assert proof == SignedMessage(address, NEON_JS_KEYS[1][1], proof.signature, None)
    verify_ownership(address, "Proof for the gas bank ✓", proof.public_key, proof.signature)
    assert proof.as_dict() == {
        "address": address,
        "public_key": NEON_JS_KEYS[1][1],
        "signature": proof.signature,
    }


def test_sign_message_signs_the_wallet_bytes() -> None:
    wif, public_key, _ = NEON_JS_KEYS[0]
    salt = "1b7fbf00b4f43ed9afd51d794e3470b8"
    proof = sign_message(wif, "Hello World", salt)
    assert proof.public_key == public_key
    assert proof.as_dict()["salt"] == salt
    # Checked with neo-mamba's ECDSA directly: the wrapped bytes, not the bare text.
    signature, key = bytes.fromhex(proof.signature), bytes.fromhex(public_key)
    wrapped = _wrap((salt + "Hello World").encode().hex(), "2b")
    assert cryptography.verify_signature(wrapped, signature, key)
    assert not cryptography.verify_signature(b"Hello World", signature, key)


def test_both_s_forms_of_our_own_signatures_verify(signed: tuple[SignedMessage, str]) -> None:
    proof, message = signed
    for signature in (proof.signature, _flip_s(proof.signature)):
        verify_ownership(proof.address, message, proof.public_key, signature, proof.salt)


@pytest.mark.parametrize(
    "change",
    [
        {"message": "Register this address with the gas bank: nonce 4f1d"},
        {"salt": "9f86d081884c7d659a2feaa0c55ad016"},
        {"salt": None},
        {"salt": ""},
    ],
    ids=["other message", "other salt", "salt left out", "empty salt"],
)
def test_signature_over_something_else_is_refused(
    signed: tuple[SignedMessage, str], change: dict[str, str | None]
) -> None:
    proof, message = signed
    args: dict[str, str | None] = {
        "address": proof.address,
        "message": message,
        "public_key_hex": proof.public_key,
        "signature_hex": proof.signature,
        "salt": proof.salt,
    }
    args.update(change)
    with pytest.raises(InvalidProof, match=r"^signature does not verify"):
        verify_ownership(**args)  # type: ignore[arg-type]


def test_proof_for_another_address_is_refused(signed: tuple[SignedMessage, str]) -> None:
    proof, message = signed
    other = NEON_JS_KEYS[0][2]
    with pytest.raises(
        InvalidProof, match=f"^public key belongs to {proof.address}, not to {other}"
    ):
        verify_ownership(other, message, proof.public_key, proof.signature, proof.salt)


def test_another_keys_signature_is_refused(signed: tuple[SignedMessage, str]) -> None:
    # The attacker names their own key (so key and address agree) but replays a signature.
    proof, message = signed
    _, public_key, address = NEON_JS_KEYS[0]
    with pytest.raises(InvalidProof, match=r"^signature does not verify"):
        verify_ownership(address, message, public_key, proof.signature, proof.salt)


GOOD = DAPPKIT_HELLO


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("address", "not an address", "^not a Neo N3 address: must be 34 characters"),
        ("address", "", "^not a Neo N3 address"),
        ("address", None, "^not a Neo N3 address: not a string"),
        ("public_key_hex", "zz" * 33, "^public key is not hex"),
        ("public_key_hex", "0x" + GOOD["public_key_hex"][2:], "^public key is not hex"),
        ("public_key_hex", " " + GOOD["public_key_hex"][1:], "^public key is not hex"),
        ("public_key_hex", GOOD["public_key_hex"][:-1], "^public key has an odd number"),
        ("public_key_hex", GOOD["public_key_hex"][:-2], "^public key must be 33 bytes: got 32"),
        ("public_key_hex", "", "^public key must be 33 bytes: got 0"),
        ("public_key_hex", "02" * 10**6, r"^public key must be 33 bytes \(66 hex characters\)"),
        ("public_key_hex", "04" + "11" * 64, "^public key must be compressed .* got 65 bytes"),
        ("public_key_hex", "05" + "11" * 32, "^public key must be compressed .* got 05"),
        ("public_key_hex", "02" + "ff" * 32, "^public key is not a point on secp256r1"),
        ("public_key_hex", b"\x02" * 33, "^public key must be a hex string: got bytes"),
        ("signature_hex", "", "^signature must be 64 bytes: got 0 bytes"),
        ("signature_hex", GOOD["signature_hex"][:-2], "^signature must be 64 bytes: got 63"),
        ("signature_hex", GOOD["signature_hex"] + "00", "^signature must be 64 bytes: got 65"),
        ("signature_hex", GOOD["signature_hex"][:-1], "^signature has an odd number"),
        ("signature_hex", "g" * 128, "^signature is not hex"),
        ("signature_hex", "30" * 71, "^signature must be 64 bytes: got 71"),  # DER
        ("signature_hex", "ab" * 10**6, r"^signature must be 64 bytes \(128 hex characters\)"),
        ("signature_hex", "00" * 64, "^signature does not verify"),
        ("signature_hex", "ff" * 64, "^signature does not verify"),
        ("message", "x" * (MAX_MESSAGE_CHARS + 1), "^message is longer than"),
        ("message", "\ud800", "^message or salt is not valid Unicode text"),
        ("message", 42, "^message must be a string: got int"),
        ("salt", "s" * (MAX_SALT_CHARS + 1), f"^salt is longer than {MAX_SALT_CHARS}"),
        ("salt", "\udfff", "^message or salt is not valid Unicode text"),
        ("salt", 7, "^salt must be a string: got int"),
    ],
)
def test_each_malformed_input_says_what_is_wrong(field: str, value: object, reason: str) -> None:
    args: dict[str, object] = {**GOOD, field: value}
    with pytest.raises(InvalidProof, match=reason):
        verify_ownership(**args)  # type: ignore[arg-type]


def test_arbitrary_input_only_ever_raises_invalid_proof() -> None:
    rng = random.Random(20240611)
    pieces = ["", "0", "02", "03", "04", "ff", "0x", " ", "\n", "é", "\ud800", "\x00", "N", "g"]
    pieces += [GOOD["public_key_hex"], GOOD["signature_hex"], GOOD["address"]]

    def junk() -> str:
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))

    fields = ("address", "message", "public_key_hex", "signature_hex", "salt")
    for _ in range(500):
        args: dict[str, str | None] = dict(GOOD)
        for field in rng.sample(fields, rng.randint(1, len(fields))):
            args[field] = junk()
        with contextlib.suppress(InvalidProof):
            verify_ownership(**args)  # type: ignore[arg-type]


# --- signing (dev chain and tests) -----------------------------------------------------


@pytest.mark.parametrize(
    "wif",
    [
        "",
        "not-a-wif",
        NEON_JS_KEYS[0][0][:-1] + "h",  # bad checksum
        Account.private_key_to_wif(b"\x00" * 32),  # key outside the curve's range
        Account.private_key_to_wif(N.to_bytes(32, "big")),
    ],
)
def test_sign_message_refuses_a_bad_wif(wif: str) -> None:
    with pytest.raises(ValueError, match=r"^not a usable WIF key"):
        sign_message(wif, "hello")
