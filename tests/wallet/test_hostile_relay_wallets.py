"""A hostile relay can't make a client show or pay a wallet that is not genuinely linked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_account import Account

from tenchat.client.wallet import WalletError
from tenchat.common import frames as f
from tenchat.common import wallets as w
from tenchat.common.crypto.keys import IdentityKey
from tenchat.common.identity import handle_message, relay_origin
from tests.e2e.test_hostile_relay import hostile_relay, make_client
from tests.wallet.links import link_record, retitled

bob = IdentityKey.generate()
mallory = IdentityKey.generate()
BOB_WALLET = bytes(Account.create().key)
MALLORY_WALLET = bytes(Account.create().key)
DAY = timedelta(days=1)


def records(relay: str) -> tuple[bytes, dict[str, bytes]]:
    """bob's genuine binding on the relay at origin ``relay``, and forged ones."""
    now = datetime.now(UTC)
    genuine = link_record(bob.public, bob.sign, BOB_WALLET, relay)
    forged = {
        # mallory's wallet, countersigned by mallory's key in bob's name
        "identity_forged": link_record(bob.public, mallory.sign, MALLORY_WALLET, relay),
        # mallory's wallet agreed to link to mallory; the record claims bob
        "mismatched": link_record(bob.public, bob.sign, MALLORY_WALLET, relay,
                                  named_user=mallory.public),
        # bob's genuine binding made for another relay
        "other_relay": link_record(bob.public, bob.sign, BOB_WALLET, "elsewhere"),
        # edited after signing
        "tampered": retitled(link_record(bob.public, bob.sign, BOB_WALLET, "elsewhere"),
                             relay),
        # mallory's own genuine binding, handed out as bob's
        "someone_else": link_record(mallory.public, mallory.sign, MALLORY_WALLET, relay),
        # bob's genuine binding of a wallet he stopped renewing (unlinked) 40 days ago
        "expired": link_record(bob.public, bob.sign, MALLORY_WALLET, relay,
                               when=now - 70 * DAY),
        # dated ahead so it would stay "the newest binding" whatever bob links later
        "future_issued_at": link_record(bob.public, bob.sign, MALLORY_WALLET, relay,
                                        when=now + DAY),
        # an expiry far ahead: bindings lapse within LINK_LIFETIME unless renewed
        "expires_too_late": link_record(bob.public, bob.sign, MALLORY_WALLET, relay,
                                        expires=int((now + 400 * DAY).timestamp() * 1000)),
        # made for the relay's announced name instead of the URL dialled
        "announced_name": link_record(bob.public, bob.sign, MALLORY_WALLET, "evil"),
    }
    return genuine, forged


FORGED = sorted(records("ws://x")[1])


def answers(records: list[bytes]):  # type: ignore[no-untyped-def]
    async def answer(frame: f.Request) -> list[object]:
        if isinstance(frame, f.Lookup):
            return [f.HandleInfo(id=frame.id, handle="bob", user=bob.public,
                                 sig=bob.sign(handle_message("bob", bob.public)))]
        assert isinstance(frame, f.WalletsGet)
        return [f.WalletLinks(id=frame.id, user=frame.user, records=records)]

    return answer


@pytest.mark.asyncio
async def test_only_genuine_bindings_are_shown(tmp_path: Path) -> None:
    box: list[bytes] = []
    url, server = await hostile_relay(answers(box))
    genuine, forged = records(relay_origin(url))
    box += [*forged.values(), genuine]
    client = await make_client(tmp_path, url)
    try:
        shown = await client.wallet.verified_wallets(bob.public)
        assert [v.address for v in shown] == [Account.from_key(BOB_WALLET).address]
    finally:
        await client.close()
        server.close()


@pytest.mark.parametrize("name", FORGED)
@pytest.mark.asyncio
async def test_a_gift_never_goes_to_a_forged_binding(tmp_path: Path, name: str) -> None:
    box: list[bytes] = []
    url, server = await hostile_relay(answers(box))
    box.append(records(relay_origin(url))[1][name])
    client = await make_client(tmp_path, url)
    try:
        await client.wallet.import_key(Account.create().key.hex())
        with pytest.raises(WalletError, match="has no verified wallet linked"):
            await client.wallet.plan_gift("bob", "0.5", chain="ethereum")
    finally:
        await client.close()
        server.close()


@pytest.mark.asyncio
async def test_an_unlinked_wallet_stays_unlinked_whatever_the_relay_keeps(tmp_path: Path) -> None:
    """The relay "forgets" the unlink and keeps serving the old (unexpired) binding: the
    owner's client neither shows it as linked nor renews it."""
    box: list[bytes] = []
    puts: list[bytes] = []

    async def answer(frame: f.Request) -> list[object]:
        if isinstance(frame, f.WalletsGet):
            return [f.WalletLinks(id=frame.id, user=frame.user, records=box)]
        if isinstance(frame, f.WalletLinkPut):
            puts.append(frame.record)
            return [f.Ok(id=frame.id)]
        assert isinstance(frame, f.WalletUnlink)
        return [f.Ok(id=frame.id)]  # and keeps the record anyway

    url, server = await hostile_relay(answer)
    client = await make_client(tmp_path, url)
    wallet = bytes(Account.create().key)
    address = Account.from_key(wallet).address
    # our own binding, 15 days old: due for renewal
    box.append(link_record(client.user, client.identity.sign, wallet, relay_origin(url),
                           when=datetime.now(UTC) - 15 * DAY))
    try:
        mine = await client.wallet.verified_wallets(client.user)
        assert [v.address for v in mine] == [address]
        assert await client.wallet.renew_links() == [address]  # renewed while linked
        assert len(puts) == 1
        renewed = w.open_link(puts[0], origins={relay_origin(url)},
                              now=datetime.now(UTC))
        assert renewed.expires > mine[0].expires
        await client.wallet.unlink(address)
        assert await client.wallet.verified_wallets(client.user) == []
        assert await client.wallet.renew_links() == []  # never renewed again
        assert len(puts) == 1
    finally:
        await client.close()
        server.close()
