"""Interoperability with the PyPI packages ``doubleratchet`` 1.3.0 and ``x3dh`` 1.3.0 (Syndace).

The packages are configured with the primitives of docs/crypto.md:

- Double Ratchet: Curve25519 ratchet keys; root chain ``kdf_hkdf`` (HKDF-SHA256, salt = RK,
  info ``tenchat/ratchet/root/v1``); message chains ``kdf_separate_hmacs`` (HMAC-SHA256)
  with the constant ``0x02 0x01`` (next chain key = HMAC(ck, 0x02), message key =
  HMAC(ck, 0x01)); an AEAD subclass written here independently of our code (HKDF from
  pyca/cryptography + libsodium XChaCha20-Poly1305); ``_build_associated_data`` =
  ``AD || dh || uint32be(pn) || uint32be(n)``, our 40-byte header.
- X3DH: identity keys in Ed25519 format, SHA-256, info ``tenchat/x3dh/v1``;
  ``_encode_public_key`` = ``0x05 || pub`` for Curve25519 keys (the signed prekey, so
  their signatures are over ``signed_prekey_message``) and the raw 32 bytes for Ed25519
  identity keys (our ``Encode(IK)``).

Nothing had to be bent: both packages' hooks cover every choice we made. Only their
limits behave differently outside the happy path (their ratchet warns and skips nothing
when a header's PN is too far ahead, ours raises TooManySkippedMessages), which these
message-for-message tests don't exercise.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import msgspec
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from doubleratchet import AEAD as TheirAEADBase
from doubleratchet import AuthenticationFailedException, EncryptedMessage
from doubleratchet import DoubleRatchet as TheirDoubleRatchetBase
from doubleratchet import Header as TheirHeader
from doubleratchet.recommended import HashFunction as DRHash
from doubleratchet.recommended import (
    diffie_hellman_ratchet_curve25519,
    kdf_hkdf,
    kdf_separate_hmacs,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl import bindings
from x3dh import BaseState, Bundle, IdentityKeyFormat
from x3dh import HashFunction as X3DHHash
from x3dh import Header as X3DHHeader
from x3dh.identity_key_pair import IdentityKeyPairSeed

from tenchat.common.crypto import x3dh as our_x3dh
from tenchat.common.crypto.keys import (
    IdentityKey,
    X25519KeyPair,
    make_one_time_prekeys,
    make_signed_prekey,
)
from tenchat.common.crypto.ratchet import MAX_SKIP, MAX_STORED_SKIPPED, DoubleRatchet, Header
from tenchat.common.crypto.session import Session

# --- the third-party packages, configured with our primitives ------------------------------


class RootKDF(kdf_hkdf.KDF):
    @staticmethod
    def _get_hash_function() -> DRHash:
        return DRHash.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return b"tenchat/ratchet/root/v1"


class ChainKDF(kdf_separate_hmacs.KDF):
    @staticmethod
    def _get_hash_function() -> DRHash:
        return DRHash.SHA_256


def _key_nonce(message_key: bytes) -> tuple[bytes, bytes]:
    okm = HKDF(
        algorithm=hashes.SHA256(), length=56, salt=b"\x00" * 32, info=b"tenchat/ratchet/message/v1"
    ).derive(message_key)
    return okm[:32], okm[32:]


class XChaChaAEAD(TheirAEADBase):
    @staticmethod
    async def encrypt(plaintext: bytes, key: bytes, associated_data: bytes) -> bytes:
        k, nonce = _key_nonce(key)
        return bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, associated_data, nonce, k
        )

    @staticmethod
    async def decrypt(ciphertext: bytes, key: bytes, associated_data: bytes) -> bytes:
        k, nonce = _key_nonce(key)
        try:
            return bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                ciphertext, associated_data, nonce, k
            )
        except Exception as exc:
            raise AuthenticationFailedException() from exc


class TheirDoubleRatchet(TheirDoubleRatchetBase):
    @staticmethod
    def _build_associated_data(associated_data: bytes, header: TheirHeader) -> bytes:
        return (
            associated_data
            + header.ratchet_pub
            + header.previous_sending_chain_length.to_bytes(4, "big")
            + header.sending_chain_length.to_bytes(4, "big")
        )


DR_CONFIG: dict[str, Any] = {
    "diffie_hellman_ratchet_class": diffie_hellman_ratchet_curve25519.DiffieHellmanRatchet,
    "root_chain_kdf": RootKDF,
    "message_chain_kdf": ChainKDF,
    "message_chain_constant": b"\x02\x01",
    "dos_protection_threshold": MAX_SKIP,
    "max_num_skipped_message_keys": MAX_STORED_SKIPPED,
    "aead": XChaChaAEAD,
}


class TheirX3DH(BaseState):
    @staticmethod
    def _encode_public_key(key_format: IdentityKeyFormat, pub: bytes) -> bytes:
        if key_format is IdentityKeyFormat.CURVE_25519:
            return b"\x05" + pub
        return pub


def their_x3dh(identity: IdentityKey) -> TheirX3DH:
    return TheirX3DH.create(
        IdentityKeyFormat.ED_25519, X3DHHash.SHA_256, b"tenchat/x3dh/v1",
        IdentityKeyPairSeed(identity.seed),
    )


# --- one ratchet party behind a common face ------------------------------------------------

Wire = tuple[bytes, int, int, bytes]  # dh, pn, n, ciphertext


class Party(Protocol):
    """Async because the packages' ratchet is (its methods are coroutines, though they
    never wait for anything)."""

    async def encrypt(self, plaintext: bytes) -> Wire: ...
    async def decrypt(self, wire: Wire) -> bytes: ...


class Ours:
    def __init__(self, ratchet: DoubleRatchet, ad: bytes) -> None:
        self.ratchet, self.ad = ratchet, ad

    async def encrypt(self, plaintext: bytes) -> Wire:
        h, ct = self.ratchet.encrypt(plaintext, self.ad)
        return h.dh, h.pn, h.n, ct

    async def decrypt(self, wire: Wire) -> bytes:
        # Also round-trip the state, as the client does after every message.
        pt = self.ratchet.decrypt(Header(*wire[:3]), wire[3], self.ad)
        self.ratchet = DoubleRatchet.from_bytes(self.ratchet.to_bytes())
        return pt


class Theirs:
    """The package's ratchet; created lazily by its initial-message calls."""

    def __init__(self, shared_key: bytes, ad: bytes, *, peer_pub: bytes | None = None,
                 own_priv: bytes | None = None) -> None:
        self.sk, self.ad, self.peer_pub, self.own_priv = shared_key, ad, peer_pub, own_priv
        self.dr: TheirDoubleRatchet | None = None

    async def encrypt(self, plaintext: bytes) -> Wire:
        if self.dr is None:
            assert self.peer_pub is not None, "the receiver can't send first"
            self.dr, msg = await TheirDoubleRatchet.encrypt_initial_message(
                shared_secret=self.sk, recipient_ratchet_pub=self.peer_pub, message=plaintext,
                associated_data=self.ad, **DR_CONFIG,
            )
        else:
            msg = await self.dr.encrypt_message(plaintext, self.ad)
        h = msg.header
        pn, n = h.previous_sending_chain_length, h.sending_chain_length
        return h.ratchet_pub, pn, n, msg.ciphertext

    async def decrypt(self, wire: Wire) -> bytes:
        msg = EncryptedMessage(header=TheirHeader(*wire[:3]), ciphertext=wire[3])
        if self.dr is None:
            assert self.own_priv is not None, "the sender can't receive first"
            self.dr, pt = await TheirDoubleRatchet.decrypt_initial_message(
                shared_secret=self.sk, own_ratchet_priv=self.own_priv, message=msg,
                associated_data=self.ad, **DR_CONFIG,
            )
            return pt
        return await self.dr.decrypt_message(msg, self.ad)


def make_pair(ours_is_alice: bool) -> tuple[Party, Party]:
    """(Alice, Bob) with one side ours and the other theirs, sharing SK and Bob's ratchet key."""
    sk, ad = os.urandom(32), os.urandom(64)
    bob_spk = X25519KeyPair.generate()
    if ours_is_alice:
        return (Ours(DoubleRatchet.init_sender(sk, bob_spk.public), ad),
                Theirs(sk, ad, own_priv=bob_spk.private))
    return (Theirs(sk, ad, peer_pub=bob_spk.public),
            Ours(DoubleRatchet.init_receiver(sk, bob_spk), ad))


class Conversation:
    """Alice and Bob sending; each message is delivered once, in whatever order a test picks."""

    def __init__(self, alice: Party, bob: Party) -> None:
        self.parties = {"A": alice, "B": bob}
        self.in_flight: dict[str, list[tuple[Wire, bytes]]] = {"A": [], "B": []}  # to A / to B
        self.received = {"A": 0, "B": 0}
        self.counter = 0

    def can_send(self, who: str) -> bool:
        return who == "A" or self.received["B"] > 0

    async def send(self, who: str) -> None:
        self.counter += 1
        plaintext = f"{who} message {self.counter}".encode()
        to = "B" if who == "A" else "A"
        self.in_flight[to].append((await self.parties[who].encrypt(plaintext), plaintext))

    async def deliver(self, to: str, index: int) -> None:
        wire, plaintext = self.in_flight[to].pop(index)
        assert await self.parties[to].decrypt(wire) == plaintext
        self.received[to] += 1


SCRIPT: list[tuple[Any, ...]] = [
    # (action, who, index): send 3, deliver out of order and hold one back across ratchet turns
    ("send", "A"), ("send", "A"), ("send", "A"),
    ("deliver", "B", 2), ("deliver", "B", 0),
    ("send", "B"), ("send", "B"), ("deliver", "A", 1), ("deliver", "A", 0),
    ("send", "A"), ("send", "A"), ("deliver", "B", 2), ("deliver", "B", 1),
    ("deliver", "B", 0),  # the one held back since the first turn
    ("send", "B"), ("send", "B"), ("send", "B"), ("deliver", "A", 2),
    ("send", "A"), ("deliver", "B", 0),
    ("send", "B"), ("deliver", "A", 2), ("deliver", "A", 1), ("deliver", "A", 0),
    ("send", "A"), ("send", "B"), ("deliver", "A", 0), ("deliver", "B", 0),
]


@pytest.mark.parametrize("ours_is_alice", [True, False], ids=["ours-alice", "ours-bob"])
@pytest.mark.asyncio
async def test_double_ratchet_interop_scripted(ours_is_alice: bool) -> None:
    conv = Conversation(*make_pair(ours_is_alice))
    for step in SCRIPT:
        if step[0] == "send":
            await conv.send(step[1])
        else:
            await conv.deliver(step[1], step[2])
    assert conv.in_flight == {"A": [], "B": []}
    assert conv.counter == 14


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ours_is_alice=st.booleans(), data=st.data())
@pytest.mark.asyncio
async def test_double_ratchet_interop_random_schedules(ours_is_alice: bool,
                                                      data: st.DataObject) -> None:
    conv = Conversation(*make_pair(ours_is_alice))
    for _ in range(data.draw(st.integers(5, 40), label="steps")):
        choices = [("send", w) for w in "AB" if conv.can_send(w)]
        choices += [("deliver", w) for w in "AB" if conv.in_flight[w]]
        action, who = data.draw(st.sampled_from(choices))
        if action == "send":
            await conv.send(who)
        else:
            await conv.deliver(who, data.draw(st.integers(0, len(conv.in_flight[who]) - 1)))
    for who in "AB":  # everything still in flight arrives, newest first
        while conv.in_flight[who]:
            await conv.deliver(who, len(conv.in_flight[who]) - 1)


# --- X3DH ---------------------------------------------------------------------------------


@pytest.mark.parametrize("with_otk", [True, False], ids=["otk", "no-otk"])
@pytest.mark.asyncio
async def test_x3dh_theirs_initiates_ours_responds(with_otk: bool) -> None:
    alice, bob = IdentityKey.generate(), IdentityKey.generate()
    spk = make_signed_prekey(bob, 1)
    otk = make_one_time_prekeys(1, 1)[0]
    bundle = Bundle(
        identity_key=bob.public, signed_pre_key=spk.public, signed_pre_key_sig=spk.sig,
        pre_keys=frozenset({otk.public} if with_otk else ()),
    )
    sk, ad, header = await their_x3dh(alice).get_shared_secret_active(
        bundle, require_pre_key=with_otk)
    assert header.identity_key == alice.public
    assert header.pre_key == (otk.public if with_otk else None)
    ours = our_x3dh.respond(
        bob, alice.public, spk.private, otk.private if with_otk else None, header.ephemeral_key
    )
    assert ours.shared_key == sk
    assert ours.associated_data == ad == alice.public + bob.public


@pytest.mark.parametrize("with_otk", [True, False], ids=["otk", "no-otk"])
@pytest.mark.asyncio
async def test_x3dh_ours_initiates_theirs_responds(with_otk: bool) -> None:
    alice, bob = IdentityKey.generate(), IdentityKey.generate()
    bob_state = their_x3dh(bob)
    bob_state.generate_pre_keys(3)
    bundle = bob_state.bundle
    assert bundle.identity_key == bob.public  # their Ed25519 form of the seed is our user id
    otk_pub = next(iter(bundle.pre_keys)) if with_otk else None
    # Our initiate verifies their signature over 0x05 || SPK with plain Ed25519.
    ours = our_x3dh.initiate(
        alice, bundle.identity_key, bundle.signed_pre_key, bundle.signed_pre_key_sig, otk_pub
    )
    sk, ad, _ = await bob_state.get_shared_secret_passive(
        X3DHHeader(identity_key=alice.public, ephemeral_key=ours.ephemeral_pub,
                   signed_pre_key=bundle.signed_pre_key, pre_key=otk_pub),
        require_pre_key=with_otk,
    )
    assert ours.shared_key == sk
    assert ours.associated_data == ad


@pytest.mark.asyncio
async def test_session_envelopes_open_with_the_packages() -> None:
    """Our Session's prekey envelope, opened by their X3DH and their ratchet, and back."""
    alice, bob = IdentityKey.generate(), IdentityKey.generate()
    bob_state = their_x3dh(bob)
    bob_state.generate_pre_keys(1)
    bundle = bob_state.bundle
    otk_pub = next(iter(bundle.pre_keys))
    session = Session.initiate(
        alice, bob.public, 7, bundle.signed_pre_key, bundle.signed_pre_key_sig, 9, otk_pub
    )
    envelopes = [session.encrypt(f"hello {i}".encode()) for i in range(3)]
    raw = [msgspec.msgpack.decode(e) for e in envelopes]
    assert all(r["t"] == "prekey" and r["spk"] == 7 and r["otk"] == 9 for r in raw)
    sk, ad, spk_pair = await bob_state.get_shared_secret_passive(
        X3DHHeader(identity_key=raw[0]["ik"], ephemeral_key=raw[0]["ek"],
                   signed_pre_key=bundle.signed_pre_key, pre_key=otk_pub),
    )
    bob_dr = Theirs(sk, ad, own_priv=spk_pair.priv)
    for i in (2, 0, 1):
        h = Header.from_bytes(raw[i]["h"])
        assert await bob_dr.decrypt((h.dh, h.pn, h.n, raw[i]["ct"])) == f"hello {i}".encode()
    dh, pn, n, ct = await bob_dr.encrypt(b"hi alice")
    reply = msgspec.msgpack.encode({"t": "ratchet", "v": 1, "h": Header(dh, pn, n).to_bytes(),
                                    "ct": ct})
    assert session.decrypt(reply) == b"hi alice"
    assert msgspec.msgpack.decode(session.encrypt(b"next"))["t"] == "ratchet"
