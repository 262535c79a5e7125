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


@app.callback(invoke_without_command=True)
def main_options(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(
        "--home", envvar="TENCHAT_HOME", help="Folder of the identity and its cache.",
        show_default="the platform's user data dir")] = None,
    relay: Annotated[str | None, typer.Option(
        "--relay", envvar="TENCHAT_RELAY",
        help=f"Relay URL [default: the identity's relay, else {DEFAULT_RELAY}]")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    passphrase_file: Annotated[Path | None, typer.Option(
        "--passphrase-file", help="Read the passphrase from this file (first line).")] = None,
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


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


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
    from .keystore import Keystore, NoIdentity
    from .service import Client

    if not Keystore.in_home(opts.home).exists():
        raise NoIdentity(f"no identity in {opts.home} yet; create one with "
                         "`tenchat init --handle NAME`")
    return await Client.unlock(opts.home, opts.relay, read_passphrase(opts))


async def with_client(opts: Options, body: Callable[[Any], Awaitable[T]]) -> T:
    client = await open_client(opts)
    try:
        return await body(client)
    finally:
        await client.close()


def emit(opts: Options, obj: dict[str, Any], human: str) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False) if opts.json else human)


def fmt_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def message_json(msg: Any, sender: str, *, own: bool) -> dict[str, Any]:
    from .cache import STATUS_NAMES

    out: dict[str, Any] = {"id": msg.id.hex(), "from": sender, "text": msg.text,
                           "sent_at": msg.sent_at}
    if own:
        out["status"] = STATUS_NAMES[msg.status]
    return out


# --- identity -----------------------------------------------------------------------------


@app.command()
def init(
    ctx: typer.Context,
    handle: Annotated[str, typer.Option("--handle", help="The handle to register, e.g. alice.")],
) -> None:
    """Create an identity, publish its prekeys and register its handle on the relay."""
    opts: Options = ctx.obj

    async def body() -> dict[str, str]:
        from .service import Client

        client = await Client.create(opts.home, opts.relay or DEFAULT_RELAY, handle,
                                     read_passphrase(opts, confirm=True))
        try:
            return client.whoami()
        finally:
            await client.close()

    info = run(body())
    emit(opts, info, f"created @{info['handle']} on {info['relay']}\n"
                     f"fingerprint {info['fingerprint']}")


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
    text: Annotated[str, typer.Argument(help="The message; '-' reads it from stdin.")],
) -> None:
    """Send an end-to-end encrypted message; exits once the relay has stored it."""
    opts: Options = ctx.obj
    if text == "-":
        text = sys.stdin.read()
        if text.endswith("\n"):
            text = text[:-1]

    async def body(client: Any) -> tuple[Any, str]:
        from .cache import STATUS_NAMES

        msg = await client.send_text(peer, text)
        return msg, STATUS_NAMES[msg.status]

    msg, status = run(with_client(opts, body))
    to = peer.removeprefix("@").lower()
    emit(opts, {"id": msg.id.hex(), "to": to, "status": status, "sent_at": msg.sent_at},
         f"{status} {msg.id.hex()} → @{to}")


@app.command()
def inbox(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", "-f",
                                         help="Keep printing messages as they arrive.")] = False,
) -> None:
    """Fetch, decrypt and print new messages (and send delivery receipts)."""
    opts: Options = ctx.obj

    async def show(client: Any) -> None:
        for msg in await client.take_unshown():
            sender = await client.display_name(msg.peer)
            emit(opts, message_json(msg, sender, own=False),
                 f"[{fmt_time(msg.sent_at)}] @{sender}: {msg.text}")
        sys.stdout.flush()

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
        return await client.mark_read(peer)

    count = run(with_client(opts, body))
    emit(opts, {"peer": peer.removeprefix("@").lower(), "marked_read": count},
         f"marked {count} message{'s' if count != 1 else ''} read")


@app.command()
def history(
    ctx: typer.Context,
    peer: Annotated[str, typer.Argument(help="Handle of the conversation.")],
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
        contact, rows = await client.history(peer, n)
        out = []
        ticks = {"pending": "…", "sent": "✓", "delivered": "✓✓", "read": "✓✓ read"}
        for msg in rows:
            sender = client.handle if msg.outgoing else (contact.handle or "?")
            obj = message_json(msg, sender, own=msg.outgoing)
            mark = f"  {ticks[obj['status']]}" if msg.outgoing else ""
            out.append((obj, f"[{fmt_time(msg.sent_at)}] @{sender}: {msg.text}{mark}"))
        return out

    for obj, line in run(with_client(opts, body)):
        emit(opts, obj, line)


# --- contacts -----------------------------------------------------------------------------


def contact_json(contact: Any) -> dict[str, Any]:
    from ..common.identity import fingerprint

    return {"handle": contact.handle, "user_id": contact.user.hex(),
            "fingerprint": fingerprint(contact.user), "added": contact.added,
            "blocked": contact.blocked, "verified": contact.verified}


def contact_line(contact: Any) -> str:
    obj = contact_json(contact)
    flags = [name for name in ("blocked", "verified") if obj[name]]
    return f"@{contact.handle or '?'}  {obj['fingerprint']}" + (
        f"  [{', '.join(flags)}]" if flags else "")


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


@contacts_app.command("verify")
def contacts_verify(ctx: typer.Context, peer: Annotated[str, typer.Argument()]) -> None:
    """Show the safety number to compare with the peer out of band."""
    opts: Options = ctx.obj

    async def body(client: Any) -> tuple[Any, str]:
        return await client.safety_number(peer)

    contact, number = run(with_client(opts, body))
    obj = contact_json(contact) | {"safety_number": number}
    groups = number.split()
    human = (f"safety number with @{contact.handle}:\n  " + " ".join(groups[:6]) + "\n  "
             + " ".join(groups[6:]) + "\ncompare it with theirs in person or on a call")
    emit(opts, obj, human)


@app.command()
def chat(ctx: typer.Context) -> None:
    """Open the chat TUI (the same as `tenchat` with no command)."""
    open_tui(ctx.obj)


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
