"""What every `tenchat` command module shares: the global options, one-line errors,
running a coroutine, opening the client, printing for a person or as JSON."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ..common.errors import ProtocolError, TenchatError
from ..common.textsafe import for_terminal, json_for_terminal

# (re-exported: the command modules take them from here)
from .present import describe as describe
from .present import fmt_time as fmt_time
from .present import line_of as line_of
from .present import message_json as message_json

T = TypeVar("T")

DEFAULT_RELAY = "ws://127.0.0.1:8765"


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
    from .hosting import current, run_hosted  # a command the daemon runs for a caller

    hosted = current()
    try:
        return asyncio.run(coro) if hosted is None else run_hosted(hosted, coro)
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
    from . import unlock_ahead
    from .keystore import Keystore, NoIdentity

    if not Keystore.in_home(opts.home).exists():
        raise NoIdentity(f"no identity in {opts.home} yet; create one with "
                         "`tenchat init --handle NAME`")
    passphrase = read_passphrase(opts)
    # The key derived in the helper client/launch.py started before the CLI was imported,
    # else on a thread (Argon2id runs without the GIL) while the client's modules import.
    unlocking = asyncio.ensure_future(unlock_ahead.load(opts.home, passphrase))
    await asyncio.sleep(0)  # (its thread starts)
    from .service import Client, clock_from_environ

    return await Client.from_secrets(opts.home, opts.relay, await unlocking,
                                     clock=clock_from_environ(os.environ))


async def with_client(opts: Options, body: Callable[[Any], Awaitable[T]]) -> T:
    from .hosting import current

    if (hosted := current()) is not None:  # run by the daemon: its client, left open
        return await body(hosted.client)
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
    matches = await client.cache.messages.ids_with_prefix(conv, text)
    if len(matches) != 1:
        raise TenchatError(f"no message {text!r} in this conversation" if not matches
                           else f"{text!r} matches several messages; give more digits")
    return matches[0]


# A send's own id, chosen by the caller: the CLI's daemon path sets it so that a send
# retried after the daemon died is the same message, never a second one.
MessageIdOpt = Annotated[str | None, typer.Option(
    "--message-id", help="The message's id (32 hex digits): the same id never sends twice.")]


def parse_message_id(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise usage_error("--message-id takes 32 hex digits")
    return raw


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


def open_tui(opts: Options) -> None:
    """The Textual TUI; imported here so scripted commands never load Textual."""
    from .tui.app import create_app

    passphrase: str | None = None
    if opts.passphrase_file is not None or "TENCHAT_PASSPHRASE" in os.environ:
        try:
            passphrase = read_passphrase(opts)
        except TenchatError as exc:
            raise fail(str(exc)) from None
    if opts.passphrase_file is not None and passphrase is not None:
        # Argon2id in a helper while the app starts (TENCHAT_PASSPHRASE's: launch.py)
        from . import unlock_ahead

        unlock_ahead.start(opts.home, passphrase)
    try:
        app = create_app(opts.home, opts.relay, passphrase=passphrase)
    except TenchatError as exc:  # e.g. a broken config.toml
        raise fail(str(exc)) from None
    app.run()
