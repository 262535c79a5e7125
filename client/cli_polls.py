"""`tenchat poll …` and `tenchat sticker …`: polls and sticker packs.

Thin like the rest of the CLI (client.cli): parse, call ``client.polls`` /
``client.stickers``, print. Option and sticker numbers are 1-based here (as
listed); the wire uses 0-based indexes. Each command takes ``--json`` itself too.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli_common import Options, emit, fail, message_id, run, say, with_client

app = typer.Typer()  # this module's commands; client/cli.py adds them to the root

poll_app = typer.Typer(help="Polls in a chat or a group.", no_args_is_help=True)
app.add_typer(poll_app, name="poll")
sticker_app = typer.Typer(help="Sticker packs and stickers.", no_args_is_help=True)
app.add_typer(sticker_app, name="sticker")
pack_app = typer.Typer(help="Make, install and list sticker packs.", no_args_is_help=True)
sticker_app.add_typer(pack_app, name="pack")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ConvArg = Annotated[str, typer.Argument(help="A @handle or a group's name (or id).")]
PollArg = Annotated[str, typer.Argument(help="The poll's message id (or a unique prefix).")]


def _opts(ctx: typer.Context, json_out: bool) -> Options:
    opts: Options = ctx.obj
    return Options(opts.home, opts.relay, opts.json or json_out, opts.passphrase_file)


async def _conv(client: Any, name: str) -> bytes:
    """Sync first (best effort: the poll or the group may have just arrived)."""
    from .connection import ConnectionLost, RelayUnreachable

    with contextlib.suppress(RelayUnreachable, ConnectionLost):
        await client.sync()
    return await client.conversation_id(name)


async def _name(client: Any, user: bytes) -> str:
    return client.handle if user == client.user else await client.display_name(user)


async def poll_json(client: Any, view: Any) -> dict[str, Any]:
    options = []
    for i, text in enumerate(view.options):
        item: dict[str, Any] = {"number": i + 1, "text": text, "count": view.counts[i]}
        if view.names is not None:
            item["voters"] = [await _name(client, u) for u in view.names[i]]
        options.append(item)
    return {"id": view.id.hex(), "question": view.question,
            "creator": await _name(client, view.creator),
            "multiple": view.multiple, "anonymous": view.anonymous, "closed": view.closed,
            "voters": view.voters, "mine": [i + 1 for i in view.mine], "options": options}


def poll_lines(obj: dict[str, Any]) -> str:
    kind = ("multiple choice" if obj["multiple"] else "single choice") + (
        ", anonymous" if obj["anonymous"] else "")
    state = "closed" if obj["closed"] else "open"
    lines = [f"poll {obj['id'][:12]} by @{obj['creator']}: {obj['question']}  "
             f"({kind}; {state}; {obj['voters']} voted)"]
    top = max([o["count"] for o in obj["options"]] + [1])
    for o in obj["options"]:
        mark = "●" if o["number"] in obj["mine"] else " "
        bar = "█" * round(10 * o["count"] / top)
        who = f"  ({', '.join('@' + v for v in o['voters'])})" if o.get("voters") else ""
        lines.append(f" {mark} {o['number']}. {o['text']:<24} {bar:<10} {o['count']}{who}")
    return "\n".join(lines)


@poll_app.command("create")
def poll_create(
    ctx: typer.Context, conv: ConvArg,
    question: Annotated[str, typer.Argument(help="The question.")],
    option: Annotated[list[str], typer.Option("--option", "-o",
                                              help="An answer (2 to 12; repeat).")],
    multiple: Annotated[bool, typer.Option("--multiple",
                                           help="Voters may choose several options.")] = False,
    anonymous: Annotated[bool, typer.Option(
        "--anonymous", help="Votes go only to you; members see counts, not names.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Send a poll to a chat or a group (end-to-end encrypted like any message)."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> Any:
        conv_id = await _conv(client, conv)
        return await client.polls.create(conv_id, question, option, multiple=multiple,
                                         anonymous=anonymous)

    msg = run(with_client(opts, body))
    emit(opts, {"id": msg.id.hex(), "conversation": conv, "question": question.strip()},
         f"poll {msg.id.hex()} → {conv}")


@poll_app.command("vote")
def poll_vote(
    ctx: typer.Context, conv: ConvArg, poll: PollArg,
    choices: Annotated[list[int] | None, typer.Argument(
        help="Option numbers (1-based); none takes your vote back.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Vote in a poll; a new vote replaces your earlier one."""
    opts = _opts(ctx, json_out)
    _check_choices(choices)

    async def body(client: Any) -> dict[str, Any]:
        conv_id = await _conv(client, conv)
        pid = await message_id(client, conv_id, poll)
        view = await client.polls.vote(conv_id, pid, [n - 1 for n in choices or []])
        return await poll_json(client, view)

    obj = run(with_client(opts, body))
    emit(opts, obj, poll_lines(obj))


@poll_app.command("close")
def poll_close(ctx: typer.Context, conv: ConvArg, poll: PollArg,
               json_out: JsonOpt = False) -> None:
    """Close your poll: later votes are ignored."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> dict[str, Any]:
        conv_id = await _conv(client, conv)
        pid = await message_id(client, conv_id, poll)
        return await poll_json(client, await client.polls.close(conv_id, pid))

    obj = run(with_client(opts, body))
    emit(opts, obj, poll_lines(obj))


@poll_app.command("show")
def poll_show(ctx: typer.Context, conv: ConvArg, poll: PollArg,
              json_out: JsonOpt = False) -> None:
    """Show a poll: counts per option, your vote, and who voted (named polls)."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> dict[str, Any]:
        conv_id = await _conv(client, conv)
        pid = await message_id(client, conv_id, poll)
        return await poll_json(client, await client.polls.view(conv_id, pid))

    obj = run(with_client(opts, body))
    emit(opts, obj, poll_lines(obj))


# --- stickers -------------------------------------------------------------------------------


def pack_json(pack: Any) -> dict[str, Any]:
    return {"id": pack.id.hex(), "name": pack.name, "link": pack.link,
            "stickers": [{"number": i + 1, "name": e.name, "size": e.ref.size,
                          "width": e.ref.width, "height": e.ref.height}
                         for i, e in enumerate(pack.stickers)]}


def pack_lines(obj: dict[str, Any]) -> str:
    names = ", ".join(f"{s['number']}. {s['name']}" for s in obj["stickers"])
    return f"{obj['name']}  ({len(obj['stickers'])} stickers: {names})\n  {obj['link']}"


@pack_app.command("create")
def pack_create(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The pack's name.")],
    images: Annotated[list[Path], typer.Argument(help="PNG or WebP images (resized to fit "
                                                 "512 px); each one's file name names it.")],
    json_out: JsonOpt = False,
) -> None:
    """Make a sticker pack: upload the images encrypted, print the link that installs it."""
    opts = _opts(ctx, json_out)
    obj = pack_json(run(with_client(opts, lambda client: client.stickers.create_pack(
        name, images))))
    emit(opts, obj, pack_lines(obj))


@pack_app.command("install")
def pack_install(ctx: typer.Context,
                 link: Annotated[str, typer.Argument(help="A tenchat://sticker/… link.")],
                 json_out: JsonOpt = False) -> None:
    """Install a sticker pack from its link: fetch, verify and keep every sticker."""
    opts = _opts(ctx, json_out)
    obj = pack_json(run(with_client(opts, lambda client: client.stickers.install(link))))
    emit(opts, obj, pack_lines(obj))


@pack_app.command("list")
def pack_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Installed sticker packs, with their stickers' numbers and names and their links."""
    opts = _opts(ctx, json_out)
    packs = run(with_client(opts, lambda client: client.stickers.packs()))
    if opts.json:
        for pack in packs:
            emit(opts, pack_json(pack), "")
    else:
        say("\n".join(pack_lines(pack_json(p)) for p in packs) if packs else "(none)")


@sticker_app.command("send")
def sticker_send(
    ctx: typer.Context, conv: ConvArg,
    pack: Annotated[str, typer.Argument(help="An installed pack's name (or id prefix).")],
    sticker: Annotated[str, typer.Argument(help="The sticker's number (1-based) or name.")],
    json_out: JsonOpt = False,
) -> None:
    """Send a sticker from an installed pack (end-to-end encrypted)."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> tuple[Any, str]:
        from .cache import STATUS_NAMES

        conv_id = await _conv(client, conv)
        found = await client.stickers.find_pack(pack)
        msg = await client.stickers.send(conv_id, found, client.stickers.pick(found, sticker))
        return msg, STATUS_NAMES[msg.status]

    msg, status = run(with_client(opts, body))
    emit(opts, {"id": msg.id.hex(), "conversation": conv, "status": status, "text": msg.text},
         f"{status} {msg.id.hex()} {msg.text} → {conv}")


def _check_choices(choices: list[int] | None) -> None:
    if choices and any(n < 1 for n in choices):
        raise fail("option numbers start at 1")
