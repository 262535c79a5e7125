"""`tenchat` account commands: init, whoami, moderate, chat (the TUI), demo, and the
`contacts` and `settings` groups."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from ..common.errors import TenchatError
from .cli_common import (
    DEFAULT_RELAY,
    Options,
    emit,
    fail,
    open_tui,
    read_passphrase,
    run,
    usage_error,
    with_client,
)

app = typer.Typer()  # this module's commands; client/cli.py adds it to the root
contacts_app = typer.Typer(help="List, add, block and verify contacts.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")


# --- identity -----------------------------------------------------------------------------


@app.command()
def init(
    ctx: typer.Context,
    handle: Annotated[str, typer.Option("--handle", help="The handle to register, e.g. alice.")],
    invite: Annotated[str, typer.Option(
        "--invite", help="An invite code, for a relay that is invite-only.")] = "",
) -> None:
    """Create an identity, publish its prekeys and register its handle on the relay."""
    opts: Options = ctx.obj

    async def body() -> dict[str, str]:
        from .service import Client

        client = await Client.create(opts.home, opts.relay or DEFAULT_RELAY, handle,
                                     read_passphrase(opts, confirm=True), invite=invite)
        try:
            return client.whoami()
        finally:
            await client.close()

    info = run(body())
    emit(opts, info, f"created @{info['handle']} on {info['relay']}\n"
                     f"fingerprint {info['fingerprint']}")


@app.command()
def moderate(
    ctx: typer.Context,
    action: Annotated[str, typer.Argument(
        help="remove-post, remove-comment (moderators and admins), ban, unban (admins).")],
    target: Annotated[str, typer.Argument(help="A post or comment id (full hex), or @handle.")],
    reason: Annotated[str, typer.Option(help="Kept in the relay's audit log.")] = "",
) -> None:
    """Moderate the relay you are a moderator or admin of (roles are in its config)."""
    opts: Options = ctx.obj
    name = action.replace("-", "_")
    done = run(with_client(opts, lambda client: client.moderate(name, target, reason)))
    emit(opts, {"action": name, "target": done.hex()}, f"{action}: {done.hex()}")


@app.command()
def whoami(ctx: typer.Context) -> None:
    """Show this identity: handle, user id, fingerprint, relay."""
    opts: Options = ctx.obj

    async def body(client: Any) -> dict[str, str]:
        return client.whoami()

    info = run(with_client(opts, body))
    emit(opts, info, f"@{info['handle']}\nuser id     {info['user_id']}\n"
                     f"fingerprint {info['fingerprint']}\nrelay       {info['relay']}")


# --- contacts -----------------------------------------------------------------------------


def contact_json(contact: Any) -> dict[str, Any]:
    from ..common.identity import fingerprint

    out = {"handle": contact.handle, "user_id": contact.user.hex(),
           "fingerprint": fingerprint(contact.user), "added": contact.added,
           "blocked": contact.blocked, "verified": contact.verified,
           "key_changed": bool(contact.key_change)}
    if contact.key_change:  # a pending key change: this key claims another's handle
        out["claims_handle"] = contact.claimed
        out["previous_user_id"] = contact.previous_key.hex() if contact.previous_key else None
        out["needs_acceptance"] = contact.needs_acceptance
    return out


def contact_line(contact: Any) -> str:
    obj = contact_json(contact)
    flags = [name for name in ("blocked", "verified") if obj[name]]
    if contact.key_change:
        flags.append("key changed: `tenchat contacts accept-key` to send")
    name = contact.handle or (f"{contact.claimed} (NEW KEY)" if contact.claimed else "?")
    return f"@{name}  {obj['fingerprint']}" + (f"  [{', '.join(flags)}]" if flags else "")


@contacts_app.command("list")
def contacts_list(ctx: typer.Context) -> None:
    """List contacts: added ones and everyone you have talked with."""
    opts: Options = ctx.obj
    for contact in run(with_client(opts, lambda client: client.contacts())):
        emit(opts, contact_json(contact), contact_line(contact))


def _contact_action(ctx: typer.Context, peer: str, action: str) -> None:
    opts: Options = ctx.obj

    async def body(client: Any) -> Any:
        if action == "add":
            return await client.add_contact(peer)
        return await client.set_blocked(peer, action == "block")

    contact = run(with_client(opts, body))
    emit(opts, contact_json(contact), f"{action}ed: " + contact_line(contact)
         if action != "add" else "added: " + contact_line(contact))


@contacts_app.command("add")
def contacts_add(ctx: typer.Context, peer: Annotated[str, typer.Argument()]) -> None:
    """Look up a handle, verify its signed binding and add it."""
    _contact_action(ctx, peer, "add")


@contacts_app.command("block")
def contacts_block(ctx: typer.Context, peer: Annotated[str, typer.Argument()]) -> None:
    """Block a peer: their messages are dropped and you can't message them."""
    _contact_action(ctx, peer, "block")


@contacts_app.command("unblock")
def contacts_unblock(ctx: typer.Context, peer: Annotated[str, typer.Argument()]) -> None:
    """Unblock a peer."""
    _contact_action(ctx, peer, "unblock")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


@contacts_app.command("verify")
def contacts_verify(
    ctx: typer.Context,
    peer: Annotated[str, typer.Argument()],
    number: Annotated[list[str] | None, typer.Argument(
        help="With --mark: the safety number you compared (at least its first 10 digits; "
             "spaces are ignored).", show_default=False)] = None,
    mark: Annotated[bool, typer.Option(
        "--mark", help="Record that you compared the safety number NUMBER and it matched.")
    ] = False,
    unmark: Annotated[bool, typer.Option(
        "--unmark", help="Take that back: the contact is unverified again.")] = False,
) -> None:
    """Show the safety number to compare with the peer out of band (and the new key's,
    if its key changed); --mark NUMBER records that it matched: it marks the key whose
    number that is, accepting a pending new key if it is the new key's."""
    opts: Options = ctx.obj
    if mark and unmark:
        raise usage_error("give --mark or --unmark, not both")
    given = _digits(" ".join(number or []))
    if number and not mark:
        raise usage_error("a safety number goes with --mark")
    if mark and len(given) < 10:
        raise usage_error("--mark needs the safety number you compared (at least its first "
                          "10 digits): `tenchat contacts verify PEER --mark 12345 67890 ...`")

    async def body(client: Any) -> tuple[Any, str, Any, str | None]:
        from ..common.crypto.safety import safety_number

        contact, pending = await client.pending_key(peer)
        number = safety_number(client.user, contact.user)
        new = safety_number(client.user, pending.user) if pending is not None else None
        if mark:
            if new is not None and _digits(new).startswith(given):
                await client.accept_key(peer)
                contact = await client.set_verified(peer, True)
                return contact, new, None, None
            if not _digits(number).startswith(given):
                raise TenchatError(
                    f"that is not the safety number of @{contact.handle}"
                    + (" or of its new key" if pending is not None else "")
                    + "; nothing was marked")
            contact = await client.set_verified(peer, True)
        elif unmark:
            contact = await client.set_verified(peer, False)
        return contact, number, pending, new


    contact, safety, pending, new = run(with_client(opts, body))
    obj = contact_json(contact) | {"safety_number": safety}
    if pending is not None:
        obj["pending_key"] = contact_json(pending) | {"safety_number": new}

    def show(n: str) -> str:
        groups = n.split()
        return "  " + " ".join(groups[:6]) + "\n  " + " ".join(groups[6:])

    human = f"safety number with @{contact.handle}:\n" + show(safety)
    if pending is not None and new is not None:
        human += (f"\n@{contact.handle} has a NEW KEY ({obj['pending_key']['fingerprint']}), "
                  "not accepted; its safety number:\n" + show(new))
    if mark:
        human += f"\nmarked @{contact.handle} verified"
    elif unmark:
        human += f"\n@{contact.handle} is no longer marked verified"
    else:
        human += ("\ncompare it with theirs in person or on a call; if they match, "
                  f"`tenchat contacts verify {contact.handle} --mark NUMBER`")
    emit(opts, obj, human)


@contacts_app.command("accept-key")
def contacts_accept_key(ctx: typer.Context, peer: Annotated[str, typer.Argument()]) -> None:
    """Accept a contact's pending new identity key: the handle moves to it and messages go
    to it (unverified until you verify --mark again)."""
    opts: Options = ctx.obj
    contact = run(with_client(opts, lambda client: client.accept_key(peer)))
    emit(opts, contact_json(contact), "accepted the new key: " + contact_line(contact))


@contacts_app.command("reject-key")
def contacts_reject_key(ctx: typer.Context, peer: Annotated[str, typer.Argument()]) -> None:
    """Refuse a contact's pending new identity key: the handle stays with the key you
    had, and the new key's messages show under its fingerprint."""
    opts: Options = ctx.obj
    contact = run(with_client(opts, lambda client: client.reject_key(peer)))
    emit(opts, contact_json(contact), "kept the old key: " + contact_line(contact))


@app.command()
def chat(ctx: typer.Context) -> None:
    """Open the chat TUI (the same as `tenchat` with no command)."""
    open_tui(ctx.obj)


# --- settings -----------------------------------------------------------------------------

settings_app = typer.Typer(help="Privacy settings.", no_args_is_help=True)
app.add_typer(settings_app, name="settings")


@settings_app.command("get")
def settings_get(ctx: typer.Context,
                 name: Annotated[str | None, typer.Argument(help="One setting.")] = None) -> None:
    """Show privacy settings: read_receipts, typing, hide_presence, incognito."""
    opts: Options = ctx.obj

    async def body(client: Any) -> dict[str, bool]:
        values = await client.settings()
        if name is not None:
            return {name: await client.setting(name)}
        return values

    values = run(with_client(opts, body))
    emit(opts, values, "\n".join(f"{k} = {'on' if v else 'off'}" for k, v in values.items()))


@settings_app.command("set")
def settings_set(ctx: typer.Context, name: Annotated[str, typer.Argument()],
                 value: Annotated[str, typer.Argument(help="on or off")]) -> None:
    """Change a privacy setting (on/off)."""
    opts: Options = ctx.obj
    flag = {"on": True, "true": True, "1": True, "yes": True,
            "off": False, "false": False, "0": False, "no": False}.get(value.lower())
    if flag is None:
        raise fail(f"{value!r} is not on or off")

    async def body(client: Any) -> None:
        from .connection import ConnectionLost, RelayUnreachable

        await client.set_setting(name, flag)
        if name == "hide_presence":
            with contextlib.suppress(RelayUnreachable, ConnectionLost):
                await client.connection()  # tells the relay now, not at the next connect

    run(with_client(opts, body))
    emit(opts, {name: flag}, f"{name} = {'on' if flag else 'off'}")


# --- a newcomer's first conversation ------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    where: Annotated[Path, typer.Option("--dir", help="Where the demo keeps its relay and "
                                        "identities.")] = Path(".tenchat-try"),
    lines: Annotated[bool, typer.Option("--lines", help="A line-mode chat on stdin/stdout "
                                        "instead of the TUI.")] = False,
) -> None:
    """Start a local relay and chat with an echo bot, end to end encrypted."""
    from .demo import run_demo, run_demo_tui

    run(run_demo(where.resolve()) if lines else run_demo_tui(where.resolve()))
