"""Wallet bindings and SIWE sign-in against a real relay: the relay checks both signatures,
the relay name and the identity before it stores or signs anyone in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account

from tenchat.common import wallets as w
from tenchat.common.frames import (
    Authed,
    Error,
    Ok,
    WalletAuth,
    WalletLinkPut,
    WalletLinks,
    WalletsGet,
    WalletUnlink,
    Welcome,
)
from tenchat.common.identity import relay_origin
from tests.relay.test_relay_social import signer
from tests.support.relay import RelayProcess
from tests.support.wsclient import RelayClient, assert_alive, async_test, logged_in
from tests.wallet.links import link_record, personal, retitled

pytestmark = pytest.mark.slow



def origin(relay: RelayProcess) -> str:
    return relay_origin(relay.url)


@async_test
async def test_link_is_checked_stored_and_listed(relay: RelayProcess) -> None:
    wallet, other = bytes(Account.create().key), bytes(Account.create().key)
    RELAY = origin(relay)  # noqa: N806
    async with logged_in(relay.url, 2) as (alice, bob):
        forged = {
            "bad_signature": [
                link_record(alice.user, signer(alice), wallet, RELAY, wallet_signer=other),
                link_record(alice.user, signer(bob), wallet, RELAY),
                retitled(link_record(alice.user, signer(alice), wallet, "x"), RELAY)],
            "forbidden": [
                link_record(alice.user, signer(alice), wallet, RELAY, named_user=bob.user),
                link_record(alice.user, signer(alice), wallet, "another-relay"),
                # the relay's announced name instead of the URL dialled
                link_record(alice.user, signer(alice), wallet, "test-relay"),
                # issued in the future; expired; valid for longer than 30 days
                link_record(alice.user, signer(alice), wallet, RELAY,
                            when=datetime.now(UTC) + timedelta(hours=1)),
                link_record(alice.user, signer(alice), wallet, RELAY,
                            when=datetime.now(UTC) - timedelta(days=31)),
                link_record(alice.user, signer(alice), wallet, RELAY, expires=int(
                    (datetime.now(UTC) + timedelta(days=90)).timestamp() * 1000))],
            "malformed": [b"\x81\xa1x\x01"],
        }
        for code, records in forged.items():
            for record in records:
                res = await alice.call(WalletLinkPut, record=record)
                assert isinstance(res, Error) and res.error == code, (code, res)
        # bob may not publish alice's (genuine) binding... it is not his to publish
        genuine = link_record(alice.user, signer(alice), wallet, RELAY)
        res = await bob.call(WalletLinkPut, record=genuine)
        assert isinstance(res, Error) and res.error == "forbidden"
        await assert_alive(alice, bob)  # refusals changed nothing and kept both serving

        assert isinstance(await alice.call(WalletLinkPut, record=genuine), Ok)
        got = await bob.call(WalletsGet, user=alice.user)
        assert isinstance(got, WalletLinks) and got.records == [genuine]
        none = await bob.call(WalletsGet, user=bob.user)
        assert isinstance(none, WalletLinks) and none.records == []

        # an older binding can't take the address back
        older = link_record(alice.user, signer(alice), wallet, RELAY,
                            when=datetime.now(UTC) - timedelta(days=1))
        res = await alice.call(WalletLinkPut, record=older)
        assert isinstance(res, Error) and res.error == "forbidden"

        address = Account.from_key(wallet).address
        res = await bob.call(WalletUnlink, address=address)
        assert isinstance(res, Error) and res.error == "not_found"
        assert isinstance(await alice.call(WalletUnlink, address=address), Ok)
        got = await bob.call(WalletsGet, user=alice.user)
        assert isinstance(got, WalletLinks) and got.records == []


async def _siwe_login(url: str, wallet: bytes, *, nonce: bytes | None = None,
                      sign_with: bytes | None = None) -> tuple[RelayClient, object]:
    c = await RelayClient.connect(url)
    welcome = await c.hello()
    assert isinstance(welcome, Welcome)
    address = Account.from_key(wallet).address
    text = w.auth_siwe(relay_origin(url), address, nonce or welcome.challenge,
                       datetime.now(UTC)).text()
    answer = await c.call(WalletAuth, message=text, sig=personal(sign_with or wallet, text))
    return c, answer


@async_test
async def test_sign_in_with_a_linked_wallet(relay: RelayProcess) -> None:
    wallet, stranger = bytes(Account.create().key), bytes(Account.create().key)
    async with logged_in(relay.url, 1) as (alice,):
        assert isinstance(await alice.call(
            WalletLinkPut, record=link_record(alice.user, signer(alice), wallet,
                                              origin(relay))), Ok)
    c, answer = await _siwe_login(relay.url, wallet)
    try:
        assert isinstance(answer, Authed) and answer.user == alice.user
        # authenticated as alice: her own bindings are readable on this connection
        got = await c.call(WalletsGet, user=alice.user)
        assert isinstance(got, WalletLinks) and len(got.records) == 1
    finally:
        await c.close()
    for kwargs in ({"nonce": b"\x01" * 32}, {"sign_with": stranger}):
        c, answer = await _siwe_login(relay.url, wallet, **kwargs)  # type: ignore[arg-type]
        try:
            assert isinstance(answer, Error) and answer.error == "auth_failed", answer
            still = await c.call(WalletsGet, user=alice.user)  # not signed in
            assert isinstance(still, Error) and still.error == "unauthenticated"
        finally:
            await c.close()
    c, answer = await _siwe_login(relay.url, stranger)  # a wallet linked to nobody
    try:
        assert isinstance(answer, Error) and answer.error == "auth_failed"
    finally:
        await c.close()


@async_test
async def test_a_banned_identity_cant_sign_in_with_its_wallet(relay: RelayProcess) -> None:
    """wallet_auth follows auth's rules: a ban holds whichever way one signs in."""
    import asyncio

    from tests.relay.test_relay_admin import admin, member

    wallet = bytes(Account.create().key)
    alice = await member(relay.url, "alice")
    async with alice:
        assert isinstance(await alice.call(
            WalletLinkPut, record=link_record(alice.user, signer(alice), wallet,
                                              origin(relay))), Ok)
    await asyncio.to_thread(admin, relay, "ban", "@alice")
    c, answer = await _siwe_login(relay.url, wallet)
    try:
        assert isinstance(answer, Error) and answer.error == "banned", answer
        await asyncio.wait_for(c.ws.wait_closed(), 5)
    finally:
        await c.close()
