"""`tenchat group`: group chats — create, members, roles, send."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..common.textsafe import for_name, indent_lines
from .cli_common import (
    MessageIdOpt,
    Options,
    emit,
    fail,
    message_id,
    parse_message_id,
    read_text,
    run,
    usage_error,
    with_client,
)

app = typer.Typer()  # this module's commands; client/cli.py adds it to the root


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
    given_id: MessageIdOpt = None,
) -> None:
    """Send to a group: encrypted once with your sender key, stored once by the relay."""
    opts: Options = ctx.obj
    text = read_text(text) if text is not None else ""
    if attach is None and text == "":
        raise usage_error("nothing to send: give a message, or a file with --attach")
    msg_id = parse_message_id(given_id)

    async def body(client: Any) -> tuple[Any, str]:
        from .cache import STATUS_NAMES

        await client.sync()  # current membership first: keys go to who is in it now
        gid = await client.groups.require(group)
        target = await message_id(client, gid, reply_to) if reply_to else None
        if attach is not None:
            msg = await client.send_attachment_to(gid, attach, text, reply_to=target)
        else:
            msg = await client.send_text_to(gid, text, reply_to=target, msg_id=msg_id)
        return msg, STATUS_NAMES[msg.status]

    msg, status = run(with_client(opts, body))
    emit(opts, {"id": msg.id.hex(), "group": group, "status": status, "sent_at": msg.sent_at},
         f"{status} {msg.id.hex()} → #{group}")
