"""A hostile relay can't make a client show or pay a wallet that is not genuinely linked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from eth_account import Account

from tenchat.client.wallet import WalletError
from tenchat.common import frames as f
from tenchat.common.crypto.keys import IdentityKey
from tenchat.common.identity import handle_message
from tests.e2e.test_hostile_relay import hostile_relay, make_client
from tests.wallet.links import link_record, retitled

bob = IdentityKey.generate()
mallory = IdentityKey.generate()
BOB_WALLET = bytes(Account.create().key)
MALLORY_WALLET = bytes(Account.create().key)
RELAY = "evil"  # the name tests.e2e.test_hostile_relay's relay gives itself

genuine = link_record(bob.public, bob.sign, BOB_WALLET, RELAY)
forged = {
    # mallory's wallet, countersigned by mallory's key in bob's name
    "identity_forged": link_record(bob.public, mallory.sign, MALLORY_WALLET, RELAY),
    # mallory's wallet agreed to link to mallory; the record claims bob
    "mismatched": link_record(bob.public, bob.sign, MALLORY_WALLET, RELAY,
                              named_user=mallory.public),
    # bob's genuine binding made for another relay
    "other_relay": link_record(bob.public, bob.sign, BOB_WALLET, "elsewhere"),
    # edited after signing
    "tampered": retitled(link_record(bob.public, bob.sign, BOB_WALLET, "elsewhere"), RELAY),
    # mallory's own genuine binding, handed out as bob's
    "someone_else": link_record(mallory.public, mallory.sign, MALLORY_WALLET, RELAY),
}


def answers(records: list[bytes]):  # type: ignore[no-untyped-def]
    async def answer(frame: f.Request) -> list[object]:
        if isinstance(frame, f.Lookup):
            return [f.HandleInfo(id=frame.id, handle="bob", user=bob.public,
                                 sig=bob.sign(handle_message("bob", bob.public)))]
        assert isinstance(frame, f.WalletsGet)
        return [f.WalletLinks(id=frame.id, user=frame.user, records=records)]

    return answer


def test_only_genuine_bindings_are_shown(tmp_path: Path) -> None:
    async def main() -> None:
        url, server = await hostile_relay(answers([*forged.values(), genuine]))
        client = await make_client(tmp_path, url)
        try:
            shown = await client.wallet.verified_wallets(bob.public)
            assert [v.address for v in shown] == [Account.from_key(BOB_WALLET).address]
        finally:
            await client.close()
            server.close()

    asyncio.run(main())


@pytest.mark.parametrize("name", sorted(forged))
def test_a_gift_never_goes_to_a_forged_binding(tmp_path: Path, name: str) -> None:
    async def main() -> None:
        url, server = await hostile_relay(answers([forged[name]]))
        client = await make_client(tmp_path, url)
        try:
            await client.wallet.import_key(Account.create().key.hex())
            with pytest.raises(WalletError, match="has no verified wallet linked"):
                await client.wallet.plan_gift("bob", "0.5", chain="ethereum")
        finally:
            await client.close()
            server.close()

    asyncio.run(main())
