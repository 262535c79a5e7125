"""`tenchat`: the scripted command line. Thin: parse, call the client core, print.

Exit codes: 0 success, 2 usage error (typer), 1 anything else with exactly one
line ``error: ...`` on stderr — never a traceback (set TENCHAT_DEBUG=1 to see one).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ..common.errors import ProtocolError, TenchatError
from ..common.textsafe import for_name, for_terminal, indent_lines, json_for_terminal

T = TypeVar("T")

DEFAULT_RELAY = "ws://127.0.0.1:8765"

app = typer.Typer(
    name="tenchat",
    help="End-to-end encrypted chat for the terminal.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
contacts_app = typer.Typer(help="List, add, block and verify contacts.", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")


class Options:
    def __init__(self, home: Path, relay: str | None, json_out: bool,
                 passphrase_file: Path | None) -> None:
        self.home = home
        self.relay = relay
        self.json = json_out
        self.passphrase_file = passphrase_file


def default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("tenchat", appauthor=False))


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"tenchat {version('tenchat')}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main_options(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(
        "--home", envvar="TENCHAT_HOME", help="Folder of the identity and its cache.",
        show_default="the platform's user data dir")] = None,
    relay: Annotated[str | None, typer.Option(
        "--relay", envvar="TENCHAT_RELAY",
        help="Relay URL, or several of one relay, comma-separated (failover) "
             f"[default: the identity's relay, else {DEFAULT_RELAY}]")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    passphrase_file: Annotated[Path | None, typer.Option(
        "--passphrase-file", help="Read the passphrase from this file (first line).")] = None,
    show_version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_version,
        help="Print the version and exit.")] = False,
) -> None:
    ctx.obj = Options(home or default_home(), relay, json_out, passphrase_file)
    if level := os.environ.get("TENCHAT_LOG"):  # e.g. TENCHAT_LOG=info: diagnostics on stderr
        import logging

        logging.basicConfig(level=level.upper(), format="%(asctime)s %(name)s: %(message)s")
        logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    if ctx.invoked_subcommand is None:
        open_tui(ctx.obj)


def open_tui(opts: Options) -> None:
    """The Textual TUI; imported here so scripted commands never load Textual."""
    from .tui.app import create_app

    passphrase: str | None = None
    if opts.passphrase_file is not None or "TENCHAT_PASSPHRASE" in os.environ:
        try:
            passphrase = read_passphrase(opts)
        except TenchatError as exc:
            raise fail(str(exc)) from None
    try:
        app = create_app(opts.home, opts.relay, passphrase=passphrase)
    except TenchatError as exc:  # e.g. a broken config.toml
        raise fail(str(exc)) from None
    app.run()


# --- plumbing -----------------------------------------------------------------------------


def say(text: str, *, err: bool = False) -> None:
    """Print for a person. Every line the CLI prints goes through here (or emit, fail):
    peer-controlled text in it (messages, names, bios, file names, a relay's error
    message…) gets its terminal controls and bidi overrides made visible
    (common.textsafe), so it can't retitle, clear or rewrite the terminal."""
    typer.echo(for_terminal(text), err=err)


def fail(message: str) -> typer.Exit:
    say(f"error: {message}", err=True)
    return typer.Exit(1)


def usage_error(message: str) -> typer.Exit:
    """A usage mistake typer can't see (e.g. a missing either-or argument): exit 2."""
    say(f"error: {message}", err=True)
    return typer.Exit(2)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one command's coroutine; turn every failure into one `error:` line."""
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except ProtocolError as exc:
        raise fail(exc.message) from None
    except TenchatError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # a bug: still one line, unless debugging
        if os.environ.get("TENCHAT_DEBUG"):
            raise
        raise fail(f"unexpected {type(exc).__name__}: {exc}") from None


def read_passphrase(opts: Options, *, confirm: bool = False) -> str:
    if opts.passphrase_file is not None:
        try:
            return opts.passphrase_file.read_text().splitlines()[0]
        except (OSError, IndexError) as exc:
            raise TenchatError(
                f"cannot read passphrase file {opts.passphrase_file}: {exc}"
            ) from None
    env = os.environ.get("TENCHAT_PASSPHRASE")
    if env is not None:
        return env
    if not sys.stdin.isatty():
        raise TenchatError(
            "no passphrase: set TENCHAT_PASSPHRASE, pass --passphrase-file, or run in a terminal"
        )
    first = getpass.getpass("Passphrase: ")
    if confirm and getpass.getpass("Again: ") != first:
        raise TenchatError("the passphrases differ")
    return first


async def open_client(opts: Options) -> Any:
    import concurrent.futures

    from .keystore import Keystore, NoIdentity

    keystore = Keystore.in_home(opts.home)
    if not keystore.exists():
        raise NoIdentity(f"no identity in {opts.home} yet; create one with "
                         "`tenchat init --handle NAME`")
    passphrase = read_passphrase(opts)
    # Argon2 runs in C without the GIL: unlock on a thread while the client's modules
    # import on this one (~0.1 s of a command's start-up).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        unlocking = pool.submit(keystore.load, passphrase, upgrade=True)
        from .service import Client, clock_from_environ

        secrets = await asyncio.wrap_future(unlocking)
    return await Client.from_secrets(opts.home, opts.relay, secrets,
                                     clock=clock_from_environ(os.environ))


async def with_client(opts: Options, body: Callable[[Any], Awaitable[T]]) -> T:
    client = await open_client(opts)
    try:
        return await body(client)
    finally:
        await client.close()


def emit(opts: Options, obj: dict[str, Any], human: str) -> None:
    if opts.json:  # exact JSON; C1 and bidi controls as \u escapes (json escapes C0)
        typer.echo(json_for_terminal(json.dumps(obj, ensure_ascii=False)))
    else:
        say(human)


def read_text(text: str) -> str:
    if text == "-":
        text = sys.stdin.read()
        if text.endswith("\n"):
            text = text[:-1]
    return text


async def message_id(client: Any, conv: bytes, text: str) -> bytes:
    """A message id from its hex form or a unique prefix (at least 6 hex digits)."""

    text = text.lower()
    if len(text) < 6 or any(ch not in "0123456789abcdef" for ch in text):
        raise TenchatError(f"{text!r} is not a message id (hex, from `history --json`)")
    matches = await client.cache.ids_with_prefix(conv, text)
    if len(matches) != 1:
        raise TenchatError(f"no message {text!r} in this conversation" if not matches
                           else f"{text!r} matches several messages; give more digits")
    return matches[0]


def fmt_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def message_json(msg: Any, sender: str, *, own: bool, group: str | None = None,
                 reactions: dict[str, int] | None = None,
                 attachment: Any = None) -> dict[str, Any]:
    from .cache import STATUS_NAMES

    out: dict[str, Any] = {"id": msg.id.hex(), "from": sender, "text": msg.text,
                           "sent_at": msg.sent_at}
    if own:
        out["status"] = STATUS_NAMES[msg.status]
    if group is not None:
        out["group"] = group
    if msg.reply_to:
        out["reply_to"] = msg.reply_to.hex()
    for flag in ("edited", "deleted", "pinned", "mention"):
        if getattr(msg, flag):
            out[flag] = True
    if msg.expires_at:
        out["expires_at"] = msg.expires_at
    if reactions:
        out["reactions"] = reactions
    if attachment is not None and not msg.deleted:
        out["attachment"] = {"name": attachment.name, "size": attachment.size,
                             "mime": attachment.mime}
    return out


async def describe(client: Any, msg: Any) -> tuple[str, str | None]:
    """(author handle, group name or None) of a message, for printing."""
    if len(msg.peer) == 16:
        info = await client.groups.state(msg.peer)
        group = info.name if info else msg.peer.hex()
        if msg.outgoing:
            return client.handle, group
        return (await client.display_name(msg.sender)) if msg.sender else "?", group
    return (client.handle if msg.outgoing else await client.display_name(msg.peer)), None


def line_of(msg: Any, sender: str, group: str | None, suffix: str = "",
            attachment: Any = None) -> str:
    """One message for the line-oriented output. Names are kept on one line and the
    text's continuation lines are indented (security review M6): no peer text can start
    a line that looks like another message (``[12:01] @bank: ...``)."""
    where = f"#{for_name(group)} " if group is not None else ""
    text = "(message deleted)" if msg.deleted else indent_lines(msg.text)
    if attachment is not None and not msg.deleted:
        text += f" [file {for_name(attachment.name or '?')}, {attachment.size} bytes, " \
                f"`tenchat download {msg.id.hex()[:12]}`]"
    extra = " (edited)" if msg.edited and not msg.deleted else ""
    return f"[{fmt_time(msg.sent_at)}] {where}@{for_name(sender)}: {text}{extra}{suffix}"


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


# --- messages -----------------------------------------------------------------------------


@app.command()
def send(
    ctx: typer.Context,
    peer: Annotated[str, typer.Argument(help="Handle of the recipient, with or without @.")],
    text: Annotated[str | None, typer.Argument(
        help="The message ('-' reads stdin); with --attach, the caption (optional).")] = None,
    reply_to: Annotated[str | None, typer.Option(
        "--reply-to", help="Id (or unique prefix) of the message this one answers.")] = None,
    attach: Annotated[Path | None, typer.Option(
        "--attach", help="A file to send, end-to-end encrypted.")] = None,
) -> None:
    """Send an end-to-end encrypted message; exits once the relay has stored it."""
    opts: Options = ctx.obj
    text = read_text(text) if text is not None else ""
    if attach is None and text == "":
        raise usage_error("nothing to send: give a message, or a file with --attach")

    async def body(client: Any) -> tuple[Any, str]:
        from .cache import STATUS_NAMES

        target = None
        if reply_to is not None:
            target = await message_id(client, (await client.resolve(peer)).user, reply_to)
        if attach is not None:
            msg = await client.send_attachment(peer, attach, text, reply_to=target)
        else:
            msg = await client.send_text(peer, text, reply_to=target)
        return msg, STATUS_NAMES[msg.status]

    msg, status = run(with_client(opts, body))
    to = peer.removeprefix("@").lower()
    emit(opts, {"id": msg.id.hex(), "to": to, "status": status, "sent_at": msg.sent_at},
         f"{status} {msg.id.hex()} → @{to}")


@app.command()
def download(
    ctx: typer.Context,
    msg: Annotated[str, typer.Argument(help="Id (or unique prefix) of a message with a file.")],
    out: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Where to save it (a file, or a directory). "
        "[the file's name, in the current directory]")] = None,
) -> None:
    """Download, verify and decrypt a received (or sent) attachment; prints where it went."""
    opts: Options = ctx.obj

    async def body(client: Any) -> tuple[bytes, Any, Path, int]:
        from ..common.errors import TenchatError

        _conv, mid, ref = await client.attachment(msg)
        name = Path(ref.name).name or f"{mid.hex()}.bin"
        if name in (".", ".."):
            name = f"{mid.hex()}.bin"
        path = out if out is not None else Path(name)
        if path.is_dir():
            path = path / name
        if path.exists():
            raise TenchatError(f"{path} already exists; choose another with -o")
        size = await client.download(ref, path)
        return mid, ref, path, size

    mid, ref, path, size = run(with_client(opts, body))
    emit(opts, {"id": mid.hex(), "path": str(path), "size": size, "name": ref.name},
         str(path))


@app.command()
def inbox(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", "-f",
                                         help="Keep printing messages as they arrive.")] = False,
) -> None:
    """Fetch, decrypt and print new messages (and send delivery receipts)."""
    opts: Options = ctx.obj

    async def show(client: Any) -> None:
        # At least once: each message is written and flushed before any is marked shown.
        # A crash in between prints it again (same id) next time, never not at all.
        rows = await client.unshown()
        for msg in rows:
            sender, group = await describe(client, msg)
            att = (await client.attachments(msg.peer, [msg.id])).get(msg.id)
            emit(opts, message_json(msg, sender, own=False, group=group, attachment=att),
                 line_of(msg, sender, group, attachment=att))
            sys.stdout.flush()
        await client.mark_shown(rows)

    async def body(client: Any) -> None:
        await show(client)  # received earlier by another command but never printed

        async def on_messages(_rows: list[Any]) -> None:
            await show(client)

        await client.sync(follow=follow, on_messages=on_messages)
        await show(client)

    run(with_client(opts, body))


@app.command()
def read(
    ctx: typer.Context,
    peer: Annotated[str, typer.Argument(help="Handle of the conversation.")],
) -> None:
    """Mark a conversation read and send read receipts."""
    opts: Options = ctx.obj

    async def body(client: Any) -> int:
        await client.sync()
        return await client.mark_read(await client.conversation_id(peer))

    count = run(with_client(opts, body))
    emit(opts, {"peer": peer.removeprefix("@").lower(), "marked_read": count},
         f"marked {count} message{'s' if count != 1 else ''} read")


@app.command()
def history(
    ctx: typer.Context,
    peer: Annotated[str, typer.Argument(help="A @handle or a group's name.")],
    n: Annotated[int, typer.Option("-n", min=1, help="How many of the latest messages.")] = 50,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Don't sync with the relay first; print the cache as it is.")] = False,
) -> None:
    """Print a conversation from the local cache, oldest first.

    Unless --offline, first syncs with the relay (best effort) so receipts are current.
    """
    opts: Options = ctx.obj

    async def body(client: Any) -> list[tuple[dict[str, Any], str]]:
        from .connection import ConnectionLost, RelayUnreachable

        if not offline:
            # Best effort: offline, the cache is still worth showing.
            with contextlib.suppress(RelayUnreachable, ConnectionLost):
                await client.sync()
        conv = await client.conversation_id(peer)
        rows = await client.page(conv, limit=n)
        reactions = await client.cache.reactions(conv, [m.id for m in rows])
        files = await client.attachments(conv, [m.id for m in rows])
        polls = await client.polls.views(conv, [m.id for m in rows])
        stickers = await client.stickers.refs(conv, [m.id for m in rows])
        out = []
        ticks = {"pending": "…", "sent": "✓", "delivered": "✓✓", "read": "✓✓ read"}
        for msg in rows:
            sender, group = await describe(client, msg)
            obj = message_json(msg, sender, own=msg.outgoing, group=group,
                               reactions=reactions.get(msg.id), attachment=files.get(msg.id))
            if msg.id in polls:
                view = polls[msg.id]
                obj["poll"] = {"closed": view.closed, "voters": view.voters,
                               "options": view.options, "counts": view.counts}
            if msg.id in stickers and not msg.deleted:
                obj["sticker"] = await sticker_state(client, stickers[msg.id], offline)
            mark = f"  {ticks[obj['status']]}" if msg.outgoing else ""
            if "sticker" in obj and not obj["sticker"]["verified"]:
                mark += f"  ({obj['sticker'].get('error', 'not fetched')})"
            if msg.id in reactions:
                mark += "  " + " ".join(f"{e}×{n}" for e, n in reactions[msg.id].items())
            out.append((obj, line_of(msg, sender, group, mark, files.get(msg.id))))
        return out

    for obj, line in run(with_client(opts, body)):
        emit(opts, obj, line)


async def sticker_state(client: Any, sticker: Any, offline: bool) -> dict[str, Any]:
    """A sticker message's pack, index and whether its image is here and verified (fetched
    now unless --offline)."""
    from .connection import ConnectionLost, RelayUnreachable
    from .stickers import StickerError

    out: dict[str, Any] = {"pack": sticker.pack.hex(), "number": sticker.index + 1,
                           "name": sticker.name, "verified": False}
    if offline:
        out["verified"] = await client.stickers.cached(sticker) is not None
        return out
    try:
        entry, data = await client.stickers.image(sticker)
    except StickerError as exc:
        out["error"] = str(exc)
    except (RelayUnreachable, ConnectionLost):
        out["error"] = "offline"
    else:
        out.update(name=entry.name, verified=True, size=len(data))
    return out


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


    contact, number, pending, new = run(with_client(opts, body))
    obj = contact_json(contact) | {"safety_number": number}
    if pending is not None:
        obj["pending_key"] = contact_json(pending) | {"safety_number": new}

    def show(n: str) -> str:
        groups = n.split()
        return "  " + " ".join(groups[:6]) + "\n  " + " ".join(groups[6:])

    human = f"safety number with @{contact.handle}:\n" + show(number)
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


# --- message actions ---------------------------------------------------------------------


def _action(ctx: typer.Context, conv_name: str, msg: str | None, what: str,
            act: Callable[[Any, bytes, bytes | None], Awaitable[Any]]) -> None:
    opts: Options = ctx.obj

    async def body(client: Any) -> dict[str, Any]:
        conv = await client.conversation_id(conv_name)
        target = await message_id(client, conv, msg) if msg is not None else None
        await act(client, conv, target)
        out: dict[str, Any] = {"conversation": conv_name, "done": what}
        if target is not None:
            out["id"] = target.hex()
        return out

    result = run(with_client(opts, body))
    emit(opts, result, what + (f" {result['id']}" if "id" in result else ""))


@app.command()
def react(
    ctx: typer.Context,
    conv: Annotated[str, typer.Argument(help="A @handle or a group's name.")],
    msg: Annotated[str, typer.Argument(help="Message id (or unique prefix).")],
    emoji: Annotated[str, typer.Argument(help="The reaction, e.g. 👍")],
    remove: Annotated[bool, typer.Option("--remove", help="Take the reaction back.")] = False,
) -> None:
    """React to a message with an emoji (end-to-end encrypted, like everything)."""
    _action(ctx, conv, msg, "unreacted" if remove else "reacted",
            lambda c, conv_id, t: c.react(conv_id, t, emoji, remove=remove))


@app.command()
def edit(
    ctx: typer.Context,
    conv: Annotated[str, typer.Argument(help="A @handle or a group's name.")],
    msg: Annotated[str, typer.Argument(help="Id (or prefix) of your message.")],
    text: Annotated[str, typer.Argument(help="The new text; '-' reads stdin.")],
) -> None:
    """Edit one of your messages, for everyone."""
    new_text = read_text(text)
    _action(ctx, conv, msg, "edited", lambda c, conv_id, t: c.edit(conv_id, t, new_text))


@app.command()
def delete(
    ctx: typer.Context,
    conv: Annotated[str, typer.Argument(help="A @handle or a group's name.")],
    msg: Annotated[str, typer.Argument(help="Id (or prefix) of your message.")],
) -> None:
    """Delete one of your messages for everyone."""
    _action(ctx, conv, msg, "deleted", lambda c, conv_id, t: c.delete(conv_id, t))


@app.command()
def pin(
    ctx: typer.Context,
    conv: Annotated[str, typer.Argument(help="A @handle or a group's name.")],
    msg: Annotated[str, typer.Argument(help="Message id (or unique prefix).")],
    unpin: Annotated[bool, typer.Option("--unpin", help="Unpin instead.")] = False,
) -> None:
    """Pin a message in a conversation (in groups: admins only)."""
    _action(ctx, conv, msg, "unpinned" if unpin else "pinned",
            lambda c, conv_id, t: c.pin(conv_id, t, not unpin))


@app.command()
def timer(
    ctx: typer.Context,
    conv: Annotated[str, typer.Argument(help="A @handle or a group's name.")],
    seconds: Annotated[int, typer.Argument(min=0, help="Seconds after arrival; 0 turns it off.")],
) -> None:
    """Disappearing messages: new messages vanish on both sides this long after arriving."""
    _action(ctx, conv, None, f"timer set to {seconds} s",
            lambda c, conv_id, _t: c.set_timer(conv_id, seconds))


# --- groups -------------------------------------------------------------------------------

group_app = typer.Typer(help="Group chats: create, members, roles, send.", no_args_is_help=True)
app.add_typer(group_app, name="group")


def group_json(info: Any) -> dict[str, Any]:
    return {
        "group": info.id.hex(), "name": info.name, "topic": info.topic,
        "announce": info.announce, "version": info.version, "my_role": info.my_role,
        "avatar": None if info.avatar is None else {
            "hash": info.avatar.hash.hex(), "size": info.avatar.size, "mime": info.avatar.mime},
        "members": [{"handle": info.handles.get(u), "user_id": u.hex(), "role": r}
                    for u, r in sorted(info.members.items(),
                                       key=lambda kv: (kv[1] != "owner", kv[1] != "admin",
                                                       info.handles.get(kv[0]) or ""))],
    }


def group_lines(info: Any) -> str:
    obj = group_json(info)
    head = f"#{for_name(info.name)}  ({len(info.members)} members, you: {info.my_role})"
    if info.topic:
        head += f"\n  topic: {indent_lines(info.topic)}"
    if info.announce:
        head += "\n  announcement group: only admins post"
    if info.avatar is not None:
        head += f"\n  picture: {info.avatar.mime}, {info.avatar.size} bytes"
    people = "\n".join(f"  @{m['handle'] or '?'}  {m['role']}" for m in obj["members"])
    return f"{head}\n{people}"


def _group(ctx: typer.Context, name: str, act: Callable[[Any, bytes], Awaitable[Any]],
           *, show: bool = True) -> None:
    opts: Options = ctx.obj

    async def body(client: Any) -> Any:
        await client.sync()  # act on the current membership, not our last copy of it
        group = await client.groups.require(name)
        await act(client, group)
        return await client.groups.info(group) if show else None

    info = run(with_client(opts, body))
    if info is not None:
        emit(opts, group_json(info), group_lines(info))


@group_app.command("create")
def group_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The group's name.")],
    members: Annotated[list[str] | None, typer.Argument(help="Handles to add.")] = None,
    announce: Annotated[bool, typer.Option("--announce",
                                           help="Only admins may post.")] = False,
) -> None:
    """Create a group; you are its owner."""
    opts: Options = ctx.obj

    async def body(client: Any) -> Any:
        group = await client.groups.create(name, members or [], announce=announce)
        return await client.groups.info(group)

    info = run(with_client(opts, body))
    emit(opts, group_json(info), group_lines(info))


@group_app.command("add")
def group_add(ctx: typer.Context, group: Annotated[str, typer.Argument()],
              handles: Annotated[list[str], typer.Argument(help="Handles to add.")]) -> None:
    """Add members (admins)."""
    _group(ctx, group, lambda c, g: c.groups.add(g, handles))


@group_app.command("remove")
def group_remove(ctx: typer.Context, group: Annotated[str, typer.Argument()],
                 handles: Annotated[list[str], typer.Argument(help="Handles to remove.")]
                 ) -> None:
    """Remove members (admins); everyone starts new sender keys, so they read nothing after."""
    _group(ctx, group, lambda c, g: c.groups.remove(g, handles))


@group_app.command("leave")
def group_leave(ctx: typer.Context, group: Annotated[str, typer.Argument()]) -> None:
    """Leave a group."""
    opts: Options = ctx.obj

    async def body(client: Any) -> None:
        await client.sync()
        await client.groups.leave(await client.groups.require(group))

    run(with_client(opts, body))
    emit(opts, {"group": group, "left": True}, f"left #{group}")


@group_app.command("promote")
def group_promote(ctx: typer.Context, group: Annotated[str, typer.Argument()],
                  handle: Annotated[str, typer.Argument()],
                  owner: Annotated[bool, typer.Option(
                      "--owner", help="Hand over ownership (you become an admin).")] = False,
                  ) -> None:
    """Make a member an admin (owner only)."""
    _group(ctx, group, lambda c, g: c.groups.set_role(g, handle, "owner" if owner else "admin"))


@group_app.command("demote")
def group_demote(ctx: typer.Context, group: Annotated[str, typer.Argument()],
                 handle: Annotated[str, typer.Argument()]) -> None:
    """Make an admin a member again (owner only)."""
    _group(ctx, group, lambda c, g: c.groups.set_role(g, handle, "member"))


@group_app.command("rename")
def group_rename(ctx: typer.Context, group: Annotated[str, typer.Argument()],
                 name: Annotated[str, typer.Argument()]) -> None:
    """Rename a group (admins)."""
    _group(ctx, group, lambda c, g: c.groups.update(g, name=name))


@group_app.command("topic")
def group_topic(ctx: typer.Context, group: Annotated[str, typer.Argument()],
                topic: Annotated[str, typer.Argument()]) -> None:
    """Set a group's topic (admins)."""
    _group(ctx, group, lambda c, g: c.groups.update(g, topic=topic))


@group_app.command("avatar")
def group_avatar(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument()],
    image: Annotated[Path | None, typer.Argument(
        help="An image (shrunk to 512 px) to set as the group's picture.")] = None,
    save: Annotated[Path | None, typer.Option(
        "--save", "-o", help="Download the group's picture to this file instead.")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the picture.")] = False,
) -> None:
    """Set (admins), remove or download a group's picture."""
    opts: Options = ctx.obj
    if sum((image is not None, save is not None, remove)) != 1:
        raise fail("give an IMAGE to set, --save PATH to download, or --remove")
    if save is not None:
        async def body(client: Any) -> Any:
            await client.sync()
            return await client.groups.save_avatar(await client.groups.require(group), save)

        size = run(with_client(opts, body))
        emit(opts, {"saved": str(save), "size": size}, f"saved {save} ({size} bytes)")
        return
    _group(ctx, group, lambda c, g: c.groups.set_avatar(g, None if remove else image))


@group_app.command("info")
def group_info(ctx: typer.Context, group: Annotated[str, typer.Argument()]) -> None:
    """A group's name, topic and members with their roles."""
    opts: Options = ctx.obj

    async def body(client: Any) -> Any:
        await client.sync()
        return await client.groups.info(await client.groups.require(group))

    info = run(with_client(opts, body))
    emit(opts, group_json(info), group_lines(info))


@group_app.command("list")
def group_list(ctx: typer.Context) -> None:
    """The groups you are in."""
    opts: Options = ctx.obj

    async def body(client: Any) -> list[Any]:
        from .connection import ConnectionLost, RelayUnreachable

        with contextlib.suppress(RelayUnreachable, ConnectionLost):
            await client.sync()
        return list(await client.groups.list())

    for info in run(with_client(opts, body)):
        emit(opts, group_json(info), f"#{for_name(info.name)}  {len(info.members)} members  "
                                     f"(you: {info.my_role})")


@group_app.command("send")
def group_send(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="The group's name (or id).")],
    text: Annotated[str | None, typer.Argument(
        help="The message ('-' reads stdin); with --attach, the caption (optional).")] = None,
    reply_to: Annotated[str | None, typer.Option("--reply-to", help="Message id answered.")
                        ] = None,
    attach: Annotated[Path | None, typer.Option(
        "--attach", help="A file to send, end-to-end encrypted.")] = None,
) -> None:
    """Send to a group: encrypted once with your sender key, stored once by the relay."""
    opts: Options = ctx.obj
    text = read_text(text) if text is not None else ""
    if attach is None and text == "":
        raise usage_error("nothing to send: give a message, or a file with --attach")

    async def body(client: Any) -> tuple[Any, str]:
        from .cache import STATUS_NAMES

        await client.sync()  # current membership first: keys go to who is in it now
        gid = await client.groups.require(group)
        target = await message_id(client, gid, reply_to) if reply_to else None
        if attach is not None:
            msg = await client.send_attachment_to(gid, attach, text, reply_to=target)
        else:
            msg = await client.send_text_to(gid, text, reply_to=target)
        return msg, STATUS_NAMES[msg.status]

    msg, status = run(with_client(opts, body))
    emit(opts, {"id": msg.id.hex(), "group": group, "status": status, "sent_at": msg.sent_at},
         f"{status} {msg.id.hex()} → #{group}")


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


# Importing these registers their commands on `app`: social (profile, follow, post…),
# `story`, `poll`, `sticker`, `relay`.
from . import cli_polls, cli_relay, cli_social, cli_stories  # noqa: E402, F401
from .wallet import cli as _wallet_cli  # noqa: E402, F401  (the wallet commands)

# main_options' options that take a value (tests/client/test_cli_startup.py keeps this
# in step): skipped when main() looks for the command in the arguments.
VALUE_OPTIONS = frozenset({"--home", "--relay", "--passphrase-file"})


def invoked_command(argv: list[str]) -> str | None:
    """The command (or command group) name in ``argv``, after the global options; None
    if there is none, or help was asked for before it."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--help", "-h"):
            return None
        if arg == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if arg.startswith("-"):
            i += 2 if arg in VALUE_OPTIONS else 1
            continue
        return arg
    return None


def main() -> None:
    # typer builds a click command from every function's signature before it parses the
    # arguments — ~0.15 s for all of them. A scripted call needs only its own command:
    # register just that one (help, and a mistyped name, still see them all).
    name = invoked_command(sys.argv[1:])
    commands = [c for c in app.registered_commands
                if (c.name or c.callback.__name__.replace("_", "-")) == name]  # type: ignore[union-attr]
    groups = [g for g in app.registered_groups if g.name == name]
    if commands or groups:
        app.registered_commands, app.registered_groups = commands, groups
    app()


if __name__ == "__main__":
    main()
