"""Prekey upkeep against a real relay (issue 12, item 5): a drain leaves the victim's private
one-time prekeys bounded, and the signed prekey rotates with the old one kept for a grace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenchat.client.service import OTK_NEXT, Client, now_ms
from tenchat.client.settings import SettingsError, load_settings
from tenchat.common import frames as f
from tenchat.common.crypto.keys import make_one_time_prekeys
from tenchat.common.crypto.prekeys import DAY_MS
from tenchat.common.identity import signed_prekey_message, verify_signature
from tests.support.clients import People

pytestmark = pytest.mark.slow


async def texts(client: Client, peer: bytes) -> list[str]:
    return [m.text for m in await client.page(peer)]


# A relay without its fetch_bundle limits: the client's bound must hold on its own (the
# relay is untrusted, and a drain spread over many identities gets past limits).
@pytest.mark.relay(env={"TENCHAT_RELAY_BUNDLE_RATE": "0", "TENCHAT_RELAY_OTK_RATE": "0"})
@pytest.mark.asyncio
async def test_drained_one_time_prekeys_stay_bounded(people: People) -> None:
    alice, mallory, bob = await people("alice", "mallory", "bob")
    a_conn, m_conn = await alice.connection(), await mallory.connection()
    for _ in range(12):
        for _ in range(95):  # bundles taken and never used
            await m_conn.request(f.FetchBundle, user=alice.user)
        # what a prekeys_low push makes a client do
        await alice.maintain_prekeys(a_conn, refill=True)
    status = await a_conn.request(f.PublishPrekeys, user=alice.user)
    assert isinstance(status, f.PrekeyStatus) and status.otk_count >= 20
    held = [k for k, _ in await alice.cache.prekeys.ages("otk")]
    # 1,140 taken; kept: what the relay holds + the 200 most recently handed out
    assert len(held) == status.otk_count + 200, (len(held), status.otk_count)

    # A stale push (the relay already has plenty) publishes nothing more.
    await alice.maintain_prekeys(a_conn, refill=True)
    assert [k for k, _ in await alice.cache.prekeys.ages("otk")] == held

    # A batch stored but never confirmed (the connection dropped mid-publish) is
    # published again, not mistaken for keys the relay holds.
    start = int(await alice.cache.settings.get(OTK_NEXT))  # type: ignore[arg-type]
    async with alice.cache.transaction():
        for k in make_one_time_prekeys(start, 100):
            await alice.cache.prekeys.put("otk", k.key_id, k.public, k.private, 1)
        await alice.cache.settings.set(OTK_NEXT, start + 100)
    await alice.maintain_prekeys(a_conn, refill=True)
    again = await a_conn.request(f.PublishPrekeys, user=alice.user)
    assert isinstance(again, f.PrekeyStatus)
    assert again.otk_count == status.otk_count + 100
    assert len(await alice.cache.prekeys.ages("otk")) == again.otk_count + 200

    # Nothing the relay still hands out was deleted: a new peer's session starts.
    await bob.send_text("alice", "after the drain")
    await alice.sync()
    assert await texts(alice, bob.user) == ["after the drain"]


@pytest.mark.asyncio
async def test_signed_prekey_rotates_weekly_and_the_old_one_has_a_grace(people: People) -> None:
    alice, bob, carol = await people("alice", "bob", "carol")
    t0 = now_ms()
    a_conn = await alice.connection()

    async def spk_ids() -> list[int]:
        return [k for k, _ in await alice.cache.prekeys.ages("spk")]

    async def relay_spk() -> int:
        bundle = await (await carol.connection()).request(f.FetchBundle, user=alice.user)
        assert isinstance(bundle, f.Bundle)
        assert verify_signature(alice.user, signed_prekey_message(bundle.spk.pub),
                                bundle.spk.sig)
        return bundle.spk.key_id

    await alice.maintain_prekeys(a_conn, refill=False, now=t0 + 6 * DAY_MS)
    assert await spk_ids() == [1] and await relay_spk() == 1  # not due yet

    # bob starts his session from the bundle with signed prekey 1 ...
    await bob.send_text("alice", "before the rotation")
    # ... then alice rotates (a week on) before she reads it.
    await alice.maintain_prekeys(a_conn, refill=False, now=t0 + 8 * DAY_MS)
    assert await spk_ids() == [1, 2] and await relay_spk() == 2
    await carol.send_text("alice", "after the rotation")
    await alice.sync()
    assert await texts(alice, bob.user) == ["before the rotation"]  # grace: 1 kept
    assert await texts(alice, carol.user) == ["after the rotation"]

    # 30 days after 2 replaced it, 1 is deleted; 2 (replaced just now) stays.
    await alice.maintain_prekeys(await alice.connection(), refill=False,
                                 now=t0 + 38 * DAY_MS)
    assert await spk_ids() == [2, 3] and await relay_spk() == 3


def test_rotation_and_grace_come_from_config(tmp_path: Path) -> None:
    home = tmp_path / "h"
    home.mkdir()
    assert (load_settings(home).spk_rotate_days, load_settings(home).spk_grace_days) == (7, 30)
    (home / "config.toml").write_text("[prekeys]\nrotate_days = 1\ngrace_days = 2.5\n")
    settings = load_settings(home)
    assert (settings.spk_rotate_days, settings.spk_grace_days) == (1, 2.5)
    (home / "config.toml").write_text("[prekeys]\nrotate_days = 0\n")
    with pytest.raises(SettingsError, match="rotate_days"):
        load_settings(home)
    (home / "config.toml").write_text("[prekeys]\nrotate_every = 3\n")
    with pytest.raises(SettingsError, match="rotate_every"):
        load_settings(home)
