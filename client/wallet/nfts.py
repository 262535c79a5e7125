"""NFTs: the holdings of a verified wallet, NFT avatars, and NFT-gated groups (who in a
group holds the gate's token). Mixed into WalletService (service.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ...common import wallets as w
from . import WalletError
from .chains import find_chain
from .parts import WalletParts

if TYPE_CHECKING:
    pass

log = logging.getLogger("tenchat.client.wallet")

__all__ = ["NftsMixin"]


class NftsMixin(WalletParts):
    """The NFT part of WalletService; uses its chains and verified links."""

    async def nfts(self, contract: str, chain: str | None = None,
                   peer: str | None = None) -> list[tuple[str, int]]:
        """(wallet, token id) of every ERC-721 token of ``contract`` held by the verified
        wallets of ``peer`` (ours if None)."""
        ch = self.chain(chain)
        contract = self._address(contract)
        user = self.client.user if peer is None else (await self.client.resolve(peer)).user
        wallets = [v.address for v in await self.verified_wallets(user)]
        if peer is None:
            wallets = sorted(set(wallets) | set(await self.addresses()))
        evm = self.evm(ch)
        found: list[tuple[str, int]] = []
        for address in wallets:
            found += [(address, i) for i in await evm.run(evm.nfts_of, contract, address)]
        return found

    async def nft_holder(self, user: bytes, nft: Any) -> str | None:
        """Which verified wallet of ``user`` holds ``nft`` (a social.NftAvatar) now, per the
        chain; None if none does, or if it can't be checked (then it is not shown)."""
        async def owner() -> str | None:
            ch = find_chain(self.chains(), nft.chain_id)
            evm = self.evm(ch)
            return await evm.run(evm.owner_of, nft.contract, int(nft.token_id))

        # the chain and the relay asked at once: one round trip's wait instead of two
        asked = asyncio.ensure_future(owner())
        try:
            links = await self.verified_wallets(user)
        finally:
            try:
                holder = await asked
            except WalletError as exc:
                log.info("NFT avatar not checked: %s", exc)
                holder = None
        wallets = {v.address for v in links}
        return holder if holder in wallets else None

    async def nft_image(self, user: bytes, nft: Any) -> bytes | None:
        """The picture of ``user``'s NFT avatar (a social.NftAvatar) while a verified wallet
        of theirs holds it (None otherwise): from ``HOME/nft-cache`` when fetched before,
        else its tokenURI metadata and image (nft_media; WalletError if they can't be
        had)."""
        from . import nft_media

        if await self.nft_holder(user, nft) is None:
            return None
        home = self.client.home
        hit = await asyncio.to_thread(nft_media.cached, home, nft.chain_id, nft.contract,
                                      nft.token_id)
        if hit is not None:
            return hit
        ch = find_chain(self.chains(), nft.chain_id)
        evm = self.evm(ch)
        uri = await evm.run(evm.token_uri, nft.contract, int(nft.token_id))
        if not uri:
            raise WalletError(f"token {nft.token_id} of {nft.contract} has no tokenURI")
        gateway = nft_media.gateway()
        raw = await asyncio.to_thread(nft_media.read_uri, uri, nft_media.MAX_METADATA
                                      if not uri.startswith("data:image") else
                                      nft_media.MAX_IMAGE, gateway)
        data: bytes | None
        if uri.startswith("data:image"):
            data = raw  # the URI is the picture itself
        else:
            image_uri, inline = nft_media.image_from_metadata(raw)
            data = inline if image_uri is None else await asyncio.to_thread(
                nft_media.read_uri, image_uri, nft_media.MAX_IMAGE, gateway)
        assert data is not None
        await asyncio.to_thread(nft_media.store, home, nft.chain_id, nft.contract,
                                nft.token_id, data)
        return data

    async def set_nft_avatar(self, contract: str, token_id: int,
                             chain: str | None = None) -> Any:
        """Show an owned NFT as avatar: only one a verified wallet of ours holds."""
        from ...common.social import NftAvatar

        ch = self.chain(chain)
        nft = NftAvatar(chain_id=ch.chain_id, contract=self._address(contract),
                        token_id=str(token_id))
        if await self.nft_holder(self.client.user, nft) is None:
            raise WalletError(f"none of your linked wallets holds token {token_id} of "
                              f"{nft.contract} on {ch.name}")
        return await self.client.social.set_profile(nft_avatar=nft)

    # --- NFT-gated groups ------------------------------------------------------------------

    async def holds(self, user: bytes, gate: w.NftGate) -> str | None:
        """A verified wallet of ``user`` that holds a token of the gate's contract, per the
        chain; None if none does."""
        evm = self.evm(find_chain(self.chains(), gate.chain_id))
        for link in await self.verified_wallets(user):
            if await evm.run(evm.nft_balance, gate.contract, link.address) > 0:
                return link.address
        return None

    async def check_gate(self, raw_gate: bytes, users: list[bytes]) -> None:
        """The admin's check before adding ``users`` to a gated group."""
        gate = w.decode_gate(raw_gate)
        for user in users:
            if await self.holds(user, gate) is None:
                name = await self.client.display_name(user)
                raise WalletError(f"@{name} holds no token of {gate.contract} (chain "
                                  f"{gate.chain_id}) in a verified wallet; this group is "
                                  "NFT-gated")

    async def set_gate(self, group_name: str, contract: str, chain: str | None) -> w.NftGate:
        ch = self.chain(chain)
        gate = w.NftGate(chain_id=ch.chain_id, contract=self._address(contract))
        evm = self.evm(ch)
        await evm.run(evm.nft_balance, gate.contract, gate.contract)  # it is an ERC-721 here
        group = await self.client.groups.require(group_name)
        await self.client.groups._change(group, "meta", gate=w.encode_gate(gate))
        return gate

    async def gate_status(self, group_name: str) -> tuple[w.NftGate, dict[bytes, str | None]]:
        """A member's re-check: each member's holding wallet (None: holds none now)."""
        group = await self.client.groups.require(group_name)
        await self.client.groups._catch_up(group)
        state = await self.client.groups.state(group)
        if state is None or not state.gate:
            raise WalletError(f"group {group_name!r} is not NFT-gated")
        gate = w.decode_gate(state.gate)
        return gate, {user: await self.holds(user, gate) for user in state.roles}

