"""Prekey upkeep: the signed prekey's rotation and the one-time prekeys' refill
(common/crypto/prekeys.py decides; this talks to the cache and the relay).
"""

from __future__ import annotations

import functools
import logging

from ..common import frames as f
from ..common.crypto.keys import (
    X25519KeyPair,
    make_one_time_prekeys,
    make_signed_prekey,
)
from ..common.crypto.prekeys import (
    DAY_MS,
    PrekeyPolicy,
    otks_to_delete,
    spk_rotation_due,
    spks_to_delete,
)
from ..common.errors import TenchatError
from ..common.identity import (
    signed_prekey_message,
)
from .base import OTK_BATCH, OTK_LOW, OTK_NEXT, OTK_PUBLISHED, SPK_PUBLISHED, ClientBase, now_ms
from .cache import PrekeyAge, PrekeyPublic
from .connection import RelayConnection

__all__ = ['PrekeyUpkeep']

log = logging.getLogger("tenchat.client")


class PrekeyUpkeep(ClientBase):
    """The client's prekeys on the relay, kept stocked and rotated."""

    @functools.cached_property
    def prekey_policy(self) -> PrekeyPolicy:
        """Signed prekey rotation and grace from HOME/config.toml ([prekeys])."""
        from .settings import SettingsError, load_settings

        try:
            settings = load_settings(self.home)
        except SettingsError as exc:
            raise TenchatError(str(exc)) from None
        return PrekeyPolicy(rotate_ms=int(settings.spk_rotate_days * DAY_MS),
                            grace_ms=int(settings.spk_grace_days * DAY_MS))

    async def _spk_due(self, now: int) -> bool:
        """A new signed prekey is due, or the newest one never reached the relay."""
        spks = await self.cache.prekeys.ages("spk")
        published = await self.cache.settings.get(SPK_PUBLISHED)
        return spk_rotation_due(spks, now, self.prekey_policy) or (
            published is not None and spks != [] and int(published) != spks[-1][0])

    async def maintain_prekeys(self, conn: RelayConnection, *, refill: bool,
                               now: int | None = None) -> None:
        """Prekey upkeep (common/crypto/prekeys.py): make and publish a new signed prekey
        when one is due and delete replaced ones past their grace; with ``refill``, publish
        again a batch whose publish was never confirmed, ask the relay's count, publish a
        batch of one-time prekeys if it is low, and delete the private ones the relay no
        longer holds beyond the policy's few. Under the home's lock, relay round trips
        included, so two processes never number keys alike or rotate twice."""
        now = now_ms() if now is None else now
        policy = self.prekey_policy
        async with self.cache.transaction():
            await self._rotate_spk(conn, now, policy)
            if refill:
                await self._refill_otks(conn, now, policy)

    async def _rotate_spk(self, conn: RelayConnection, now: int, policy: PrekeyPolicy) -> None:
        spks = await self.cache.prekeys.ages("spk")
        raw = await self.cache.settings.get(SPK_PUBLISHED)
        # Homes made before this was recorded published their only signed prekey at init.
        published = int(raw) if raw is not None else (spks[-1][0] if spks else 0)
        if spk_rotation_due(spks, now, policy):
            spk = make_signed_prekey(self.device, spks[-1][0] + 1 if spks else 1)
            # Stored (durably) before the relay hands it out: never a public key on the
            # relay whose private half we lack.
            await self.cache.prekeys.put("spk", spk.key_id, spk.public, spk.private, now)
            await self.cache.checkpoint()
            spks.append(PrekeyAge(spk.key_id, now))
        newest_id = spks[-1][0]
        if newest_id != published:
            private = await self.cache.prekeys.private("spk", newest_id)
            assert private is not None
            pub = X25519KeyPair.from_private(private).public
            await conn.request(f.PublishPrekeys, user=self.device_id, spk=f.SignedPrekey(
                key_id=newest_id, pub=pub, sig=self.device.sign(signed_prekey_message(pub))))
            await self.cache.settings.set(SPK_PUBLISHED, newest_id)
            published = newest_id
        # Only what the relay has seen replaced counts: a rotation whose publish failed
        # doesn't start the old key's grace.
        gone = spks_to_delete([s for s in spks if s[0] <= published], now, policy)
        if gone:
            await self.cache.prekeys.delete_many("spk", gone)
        await self.cache.checkpoint()

    async def _refill_otks(self, conn: RelayConnection, now: int, policy: PrekeyPolicy
                           ) -> None:
        # A batch stored but never confirmed (the connection dropped): publish it again.
        # The relay ignores ids it already holds, so this is safe either way, and then
        # "the relay holds our highest ids" is true again.
        raw = await self.cache.settings.get(OTK_PUBLISHED)
        if raw is not None and (unconfirmed := await self.cache.prekeys.publics("otk", int(raw))):
            await self._publish_otks(conn, unconfirmed)
        # The relay's count now (a publish of nothing answers it): a prekeys_low push is
        # old news once a refill has run, and a drain sends up to otk_low of them.
        status = await conn.request(f.PublishPrekeys, user=self.device_id)
        assert isinstance(status, f.PrekeyStatus)
        if status.otk_count < OTK_LOW:
            raw = await self.cache.settings.get(OTK_NEXT)
            start = max(int(raw) if raw is not None else 1,
                        await self.cache.prekeys.max_id("otk") + 1)
            otks = make_one_time_prekeys(start, OTK_BATCH)
            for k in otks:
                await self.cache.prekeys.put("otk", k.key_id, k.public, k.private, now)
            await self.cache.settings.set(OTK_NEXT, start + OTK_BATCH)
            await self.cache.checkpoint()  # durable before the relay can hand any out
            status = await self._publish_otks(
                conn, [PrekeyPublic(k.key_id, k.public) for k in otks])
        held = [key_id for key_id, _ in await self.cache.prekeys.ages("otk")]
        gone = otks_to_delete(held, status.otk_count, policy)
        if gone:
            await self.cache.prekeys.delete_many("otk", gone)
            log.info("deleted %d one-time prekeys the relay no longer holds", len(gone))

    async def _publish_otks(self, conn: RelayConnection, keys: list[PrekeyPublic]
                            ) -> f.PrekeyStatus:
        status = await conn.request(
            f.PublishPrekeys, user=self.device_id,
            otks=[f.OneTimePrekey(key_id=key_id, pub=pub) for key_id, pub in keys])
        assert isinstance(status, f.PrekeyStatus)
        await self.cache.settings.set(OTK_PUBLISHED, keys[-1][0])
        await self.cache.checkpoint()
        return status
