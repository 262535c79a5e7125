"""common/devices.py: device lists (signatures, bindings, versions) and the linking
hand-over, as pure functions."""

from __future__ import annotations

import msgspec
import pytest

from tenchat.common import devices as dv
from tenchat.common.crypto.keys import IdentityKey
from tenchat.common.errors import ProtocolError


def entry(device: IdentityKey, account: IdentityKey, name: str) -> dv.DeviceEntry:
    return dv.DeviceEntry(key=device.public, name=name, added=1,
                          sig=dv.sign_binding(device, account.public))


def test_a_list_signed_by_its_account_opens_and_nothing_else_does() -> None:
    account, laptop, eve = IdentityKey.generate(), IdentityKey.generate(), IdentityKey.generate()
    devices = [entry(account, account, "first"), entry(laptop, account, "laptop")]
    raw = dv.make_list(account, 3, devices)
    dl = dv.open_list(raw, account=account.public)
    assert dl.version == 3 and dl.device_keys() == [account.public, laptop.public]
    assert dl.named("laptop") == devices[1] and dl.entry(eve.public) is None
    with pytest.raises(ProtocolError, match="another account"):
        dv.open_list(raw, account=eve.public)
    # signed by someone else than the account it names
    forged = msgspec.msgpack.encode(dv.DeviceList(
        v=1, account=account.public, version=4, devices=devices,
        sig=eve.sign(dv.list_message(account.public, 4, devices))))
    with pytest.raises(ProtocolError, match="not signed by its account"):
        dv.open_list(forged)
    # an account listing a device that never agreed to be in it
    with pytest.raises(ProtocolError, match="did not sign"):
        dv.make_list(eve, 1, [entry(eve, eve, "e"), dv.DeviceEntry(
            key=laptop.public, name="stolen", added=0, sig=devices[1].sig)])
    # a changed field breaks the account's signature
    tampered = msgspec.msgpack.encode(msgspec.structs.replace(dl, version=9))
    with pytest.raises(ProtocolError, match="not signed"):
        dv.open_list(tampered)
    for bad in (b"", b"\x80", raw[:-3]):
        with pytest.raises(ProtocolError):
            dv.open_list(bad)
    with pytest.raises(ProtocolError, match="distinct"):
        dv.make_list(account, 1, [devices[0], devices[0]])


def test_only_a_higher_version_succeeds() -> None:
    account = IdentityKey.generate()
    first = [entry(account, account, "first")]
    v1 = dv.open_list(dv.make_list(account, 1, first))
    v2 = dv.open_list(dv.make_list(account, 2, first))
    other = dv.open_list(dv.make_list(account, 2, [entry(account, account, "renamed")]))
    assert dv.check_successor(None, v1) and dv.check_successor(v1, v2)
    assert dv.check_successor(v2, v2) is False
    with pytest.raises(dv.StaleList, match="older"):
        dv.check_successor(v2, v1)
    with pytest.raises(dv.StaleList, match="same version"):
        dv.check_successor(v2, other)
    stranger = IdentityKey.generate()
    with pytest.raises(dv.StaleList, match="another account"):
        dv.check_successor(v1, dv.open_list(dv.make_list(
            stranger, 5, [entry(stranger, stranger, "x")])))


def test_linking_hand_over() -> None:
    code, private = dv.LinkCode.make()
    assert dv.LinkCode.decode(code.encode()) == code
    for bad in ("", "tcl1-", "tcl1-AAAA", "hello"):
        with pytest.raises(ProtocolError):
            dv.LinkCode.decode(bad)
    device = IdentityKey.generate()
    request = dv.open_request(code, dv.seal_request(code, device, "laptop"))
    assert (request.device, request.name) == (device.public, "laptop")
    other, other_private = dv.LinkCode.make()
    with pytest.raises(ProtocolError):  # another code's secret: does not open
        dv.open_request(other, dv.seal_request(code, device, "laptop"))
    got = dv.LinkGrant(account_seed=b"\x07" * 32, handle="alice", devices=b"",
                       contacts=[(b"\x01" * 32, "bob", True)])
    blob = dv.seal_grant(code, got)
    assert dv.open_grant(code, private, blob) == got
    with pytest.raises(ProtocolError):  # someone who saw the code but lacks its private key
        dv.open_grant(code, other_private, blob)
    with pytest.raises(ProtocolError):
        dv.open_grant(code, private, blob[:-1] + bytes([blob[-1] ^ 1]))
    slots = dv.link_slots(code.secret)
    assert len(set(slots)) == 2 and all(len(s) == 32 for s in slots)


def test_the_link_code_as_a_qr_code() -> None:
    from tenchat.client.cli_devices import qr_text

    code = dv.LinkCode.make()[0].encode()
    lines = qr_text(code).splitlines()
    # a square of half blocks: each line two modules tall, the border included
    assert len(lines) >= 15 and len({len(line) for line in lines}) == 1
    assert set("".join(lines)) <= {"█", "▀", "▄", " "}
    assert qr_text(code) != qr_text(dv.LinkCode.make()[0].encode())
