"""Wallet bindings (common.wallets): genuine ones verify, every forged part is refused."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account

from tenchat.common import siwe
from tenchat.common import wallets as w
from tenchat.common.crypto.keys import IdentityKey
from tenchat.common.errors import ProtocolError
from tests.wallet.links import link_record, personal, retitled

alice = IdentityKey.generate()
mallory = IdentityKey.generate()
WALLET = bytes(Account.create().key)
OTHER = bytes(Account.create().key)
NOW = datetime.now(UTC)


def test_genuine_binding_verifies() -> None:
    now = datetime.now(UTC)
    record = link_record(alice.public, alice.sign, WALLET, "test-relay", when=now)
    link = w.open_link(record, origins={"ws://test-relay"}, now=now)
    assert link.user == alice.public
    assert link.address == Account.from_key(WALLET).address
    assert link.issued_at == int(now.timestamp() * 1000)


@pytest.mark.parametrize(("record", "code"), [
    # the SIWE text signed by another wallet than the one it names
    (link_record(alice.public, alice.sign, WALLET, "test-relay", wallet_signer=OTHER),
     "bad_signature"),
    # countersigned by mallory's identity key in alice's name
    (link_record(alice.public, mallory.sign, WALLET, "test-relay"), "bad_signature"),
    # the wallet agreed to be linked to mallory, the record claims alice
    (link_record(alice.public, alice.sign, WALLET, "test-relay", named_user=mallory.public),
     "forbidden"),
    # made for another relay
    (link_record(alice.public, alice.sign, WALLET, "elsewhere"), "forbidden"),
    # tampered: the message edited after both signatures
    (retitled(link_record(alice.public, alice.sign, WALLET, "elsewhere"), "test-relay"),
     "bad_signature"),
    (b"\x93garbage", "malformed"),
], ids=["wrong_wallet", "wrong_identity", "names_another", "other_relay", "tampered",
        "garbage"])
def test_forged_bindings_are_refused(record: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        w.open_link(record, origins={"ws://test-relay"}, now=NOW)
    assert info.value.code == code


def test_sign_in_message() -> None:
    challenge = os.urandom(32)
    address = Account.from_key(WALLET).address
    text = w.auth_siwe("ws://test-relay", address, challenge, NOW).text()
    assert text.startswith("ws://test-relay wants you to sign in")
    sig = personal(WALLET, text)
    ours = {"ws://test-relay"}
    assert w.check_auth(text, sig, origins=ours, challenge=challenge, now=NOW) == address
    for kwargs in ({"challenge": os.urandom(32)}, {"origins": {"ws://elsewhere"}},
                   {"origins": {"wss://test-relay"}}, {"now": NOW + timedelta(minutes=6)},
                   {"now": NOW - timedelta(minutes=3)}):
        args = {"origins": ours, "challenge": challenge, "now": NOW} | kwargs
        with pytest.raises(ProtocolError) as info:
            w.check_auth(text, sig, **args)  # type: ignore[arg-type]
        assert info.value.code == "auth_failed"
    with pytest.raises(ProtocolError):
        w.check_auth(text, personal(OTHER, text), origins=ours, challenge=challenge, now=NOW)


def test_a_record_that_is_no_link_message_is_malformed() -> None:
    address = Account.from_key(WALLET).address
    expires = w.link_expiry(NOW)
    # a sign-in message, genuinely signed by the wallet, is not consent to a link
    auth = w.auth_siwe("ws://test-relay", address, os.urandom(32), NOW).text()
    not_a_link = w.sign_link(auth, personal(WALLET, auth), alice.public, alice.sign,
                             expires=expires)
    not_siwe = w.sign_link("hello", bytes(65), alice.public, alice.sign, expires=expires)
    for record in (not_a_link, not_siwe, b"\x00" * (w.MAX_LINK_RECORD + 1)):
        with pytest.raises(ProtocolError) as info:
            w.open_link(record, origins={"ws://test-relay"}, now=NOW)
        assert info.value.code == "malformed"


def test_a_link_message_does_not_sign_in() -> None:
    challenge = os.urandom(32)
    address = Account.from_key(WALLET).address
    text = w.link_siwe("ws://test-relay", address, alice.public, challenge.hex(), NOW).text()
    with pytest.raises(ProtocolError) as info:
        w.check_auth(text, personal(WALLET, text), origins={"ws://test-relay"},
                     challenge=challenge, now=NOW)
    assert info.value.code == "auth_failed"


@pytest.mark.parametrize("origin", ["test-relay", "ws://"])
def test_messages_are_made_only_for_a_relay_origin(origin: str) -> None:
    address = Account.from_key(WALLET).address
    with pytest.raises(siwe.MalformedMessage):
        w.auth_siwe(origin, address, os.urandom(32), NOW)
    with pytest.raises(siwe.MalformedMessage):
        w.link_siwe(origin, address, alice.public, "abcdef0123456789", NOW)
