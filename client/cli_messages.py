"""`tenchat` messaging commands: send, download, inbox, read, history, and the actions on
a message (react, edit, delete, pin, timer)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..common.errors import TenchatError
from .cli_common import (
    MessageIdOpt,
    Options,
    describe,
    emit,
    line_of,
    message_id,
    message_json,
    parse_message_id,
    read_text,
    run,
    sticker_state,
    usage_error,
    with_client,
)

app = typer.Typer()  # this module's commands; client/cli.py adds it to the root


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
    given_id: MessageIdOpt = None,
) -> None:
    """Send an end-to-end encrypted message; exits once the relay has stored it."""
    opts: Options = ctx.obj
    text = read_text(text) if text is not None else ""
    if attach is None and text == "":
        raise usage_error("nothing to send: give a message, or a file with --attach")
    msg_id = parse_message_id(given_id)

    async def body(client: Any) -> tuple[Any, str]:
        from .cache import STATUS_NAMES

        target = None
        if reply_to is not None:
            target = await message_id(client, (await client.resolve(peer)).user, reply_to)
        if attach is not None:
            msg = await client.send_attachment(peer, attach, text, reply_to=target)
        else:
            msg = await client.send_text(peer, text, reply_to=target, msg_id=msg_id)
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
        from .hosting import caller_path

        _conv, mid, ref = await client.attachment(msg)
        name = Path(ref.name).name or f"{mid.hex()}.bin"
        if name in (".", ".."):
            name = f"{mid.hex()}.bin"
        path = out if out is not None else Path(caller_path(name))
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
        reactions = await client.cache.messages.reactions(conv, [m.id for m in rows])
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
