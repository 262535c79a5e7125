"""`tenchat device` commands: link a new device to this account, approve one, list and
remove devices (issue 16; no device is the master: any may approve or remove)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from .cli_common import DEFAULT_RELAY, Options, emit, fail, read_passphrase, run, say, with_client

app = typer.Typer()  # client/cli.py adds it to the root
device_app = typer.Typer(help="This account's devices: link, approve, list, remove.",
                         no_args_is_help=True)
app.add_typer(device_app, name="device")


def qr_text(text: str) -> str:
    """``text`` as a QR code drawn with half blocks, for a terminal to show and a phone or
    another terminal's camera app to read."""
    import io

    import segno  # only here: no other command pays for it

    out = io.StringIO()
    segno.make(text, error="l").terminal(out=out, compact=True, border=2)
    return out.getvalue().rstrip("\n")


def _fingerprint(key: bytes) -> str:
    from ..common.identity import fingerprint

    return fingerprint(key)


@device_app.command("link")
def link(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(
        "--name", help="This device's name in the account [default: the host name]")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for an approval.")] = 600.0,
) -> None:
    """Make this (empty) home a new device of an account: print a one-time code, then
    wait until an existing device runs `tenchat device approve CODE`."""
    opts: Options = ctx.obj

    async def body() -> dict[str, str]:
        from .devices import default_device_name
        from .linking import start_link

        passphrase = read_passphrase(opts, confirm=True)  # before the code: no prompt after
        pending = await start_link(opts.home, opts.relay or DEFAULT_RELAY,
                                   name or default_device_name())
        fp = _fingerprint(pending.device.public)
        emit(opts, {"code": pending.text, "device": pending.device.public.hex(),
                    "fingerprint": fp},
             f"link code: {pending.text}\nthis device's fingerprint: {fp}\n"
             "on a device of the account run: tenchat device approve CODE")
        if sys.stdout.isatty():  # a person is watching: the code as a QR code too
            say(qr_text(pending.text), err=opts.json)  # (stdout stays one JSON line)
        sys.stdout.flush()
        client = await pending.finish(passphrase, timeout=timeout)
        try:
            return {**client.whoami(), "name": pending.name}
        finally:
            await client.close()

    info = run(body())
    emit(opts, info, f"linked as device {info['name']!r} of @{info['handle']}")


@device_app.command("approve")
def approve(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="The code `tenchat device link` printed.")],
    yes: Annotated[bool, typer.Option("--yes", help="Approve without asking.")] = False,
    history: Annotated[int, typer.Option(
        help="Messages per conversation the new device gets (0: none).")] = 1000,
) -> None:
    """Add the device showing CODE to this account: shows its fingerprint, asks, then
    hands it the account's keys end-to-end encrypted."""
    opts: Options = ctx.obj

    async def read(client: Any) -> Any:
        from .linking import read_request

        return await read_request(client, code)

    link_code, request = run(with_client(opts, read))
    say(f"device {request.name!r} asks to join, fingerprint {_fingerprint(request.device)}",
        err=opts.json)
    if not yes:
        if not sys.stdin.isatty():
            raise fail("compare the fingerprint with the new device's, then run again "
                       "with --yes (no terminal to ask in)")
        if not typer.confirm("Is that the fingerprint the new device shows?"):
            raise fail("not approved; the code is used up (start `device link` again)")

    async def grant(client: Any) -> Any:
        from .linking import grant as grant_link

        return await grant_link(client, link_code, request, history=history)

    dl = run(with_client(opts, grant))
    entry = dl.entry(request.device)
    emit(opts, {"approved": entry.name, "device": request.device.hex(),
                "version": dl.version}, f"approved {entry.name!r}; the account has "
                                        f"{len(dl.devices)} devices")


def _device_json(row: Any) -> dict[str, Any]:
    return {"name": row.name, "device": row.key.hex(), "fingerprint": _fingerprint(row.key),
            "added": row.added, "this": row.this}


@device_app.command("list")
def device_list(
    ctx: typer.Context,
    of: Annotated[str | None, typer.Option(
        "--of", help="A contact's devices instead (@handle).")] = None,
) -> None:
    """List this account's devices, or a contact's (and warnings about changes of the
    list: a device added or removed, a list from the relay refused)."""
    opts: Options = ctx.obj

    async def body(client: Any) -> tuple[list[Any], list[Any]]:
        account = client.user if of is None else (await client.resolve(of)).user
        async with client.cache.transaction():
            rows = await client.devices_list(account)
        return rows, await client.device_alerts(account)

    rows, alerts = run(with_client(opts, body))
    for row in rows:
        emit(opts, _device_json(row), f"{row.name}  {_fingerprint(row.key)}"
                                      + ("  (this device)" if row.this else ""))
    for alert in alerts:
        say(f"warning: {alert.text}", err=True)


@device_app.command("remove")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The device's name, from `device list`.")],
) -> None:
    """Remove a device from this account, from any other device: nothing new is
    encrypted to it."""
    opts: Options = ctx.obj
    gone = run(with_client(opts, lambda client: client.remove_device(name)))
    emit(opts, {"removed": gone.name, "device": gone.key.hex()}, f"removed {gone.name!r}")
