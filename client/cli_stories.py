"""`tenchat story post|list|view|viewers|close-friends`: 24-hour stories.

Thin like the rest of the CLI (client.cli): parse, call ``client.stories``, print.
Each command takes ``--json`` itself as well as the global one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .cli_common import Options, emit, fail, fmt_time, run, say, with_client

app = typer.Typer()  # this module's commands; client/cli.py adds them to the root

story_app = typer.Typer(help="24-hour stories for your followers or close friends.",
                        no_args_is_help=True)
app.add_typer(story_app, name="story")
friends_app = typer.Typer(help="Your close-friends list (who sees --close-friends stories).",
                          no_args_is_help=True)
story_app.add_typer(friends_app, name="close-friends")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _opts(ctx: typer.Context, json_out: bool) -> Options:
    opts: Options = ctx.obj
    return Options(opts.home, opts.relay, opts.json or json_out, opts.passphrase_file)


def story_json(v: Any, *, saved: Path | None = None) -> dict[str, Any]:
    out = {"id": v.id.hex(), "author": v.handle, "author_id": v.author.hex(),
           "posted_at": v.posted_at, "expires_at": v.expires_at, "text": v.text,
           "has_image": v.has_image, "seen": v.seen,
           "audience": "close_friends" if v.close_friends else "followers"}
    if saved is not None:
        out["image_file"] = str(saved)
    return out


def story_line(v: Any) -> str:
    mark = " " if v.seen else "*"
    what = v.text if v.text is not None else "[a story you can't open]"
    what = " ".join(what.split()) if what else ""
    if v.has_image:
        what = f"[image] {what}".rstrip()
    cf = "  (close friends)" if v.close_friends else ""
    return (f"{mark} {v.id.hex()}  @{v.handle or '?'}  {fmt_time(v.posted_at)}"
            f"  until {fmt_time(v.expires_at)}{cf}\n    {what}")


@story_app.command("post")
def story_post(
    ctx: typer.Context,
    what: Annotated[str, typer.Argument(
        metavar="PATH|TEXT",
        help="An image file to post, or else the story's text (≤ 2000 characters).")],
    text: Annotated[str | None, typer.Option(
        "--text", help="A caption, with an image.")] = None,
    filter_: Annotated[str | None, typer.Option(
        "--filter", help="An image filter: grayscale, sepia, blur[:RADIUS], "
        "pixelate[:SIZE], brightness[:FACTOR], contrast[:FACTOR].")] = None,
    close_friends: Annotated[bool, typer.Option(
        "--close-friends", help="Only your close friends can open it.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Post a story that expires 24 hours from now, sealed for your followers (or close
    friends): an image file (if PATH names one) or text."""
    opts = _opts(ctx, json_out)
    path = Path(what).expanduser()
    image = path if path.is_file() else None
    if image is None and filter_ is not None:
        raise fail(f"--filter needs an image, and {what!r} is not a file")
    body_text = text if image is not None else what

    async def body(client: Any) -> Any:
        return await client.stories.post_story(text=body_text, image=image, filter=filter_,
                                               close_friends=close_friends)

    view = run(with_client(opts, body))
    who = "close friends" if view.close_friends else "followers"
    emit(opts, story_json(view),
         f"posted story {view.id.hex()} for your {who} (until {fmt_time(view.expires_at)})")


@story_app.command("list")
def story_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Unexpired stories of whom you follow (and yours) that you can open: authors with
    unseen stories (*) first. --json: one story a line."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> list[Any]:
        await client.sync()  # audience and close-friends keys arrive end-to-end
        return await client.stories.stories()  # type: ignore[no-any-return]

    views = run(with_client(opts, body))
    if opts.json:
        for v in views:
            emit(opts, story_json(v), "")
    else:
        say("\n".join(story_line(v) for v in views) if views else "(no stories)")


def _image_path(out: Path, index: int, count: int) -> Path:
    if count <= 1:
        return out
    return out.with_name(f"{out.stem}-{index + 1}{out.suffix}")


@story_app.command("view")
def story_view(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(
        help="@handle (all their stories, oldest first), or a story id / 6+ digit prefix.")],
    out: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Save the image here (NAME-2.EXT… for several).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Open stories: print the text, save images with -o. The author gets an end-to-end
    view receipt unless your `incognito` setting is on."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> list[Any]:
        await client.sync()
        if ref.startswith("@"):
            views = await client.stories.stories_of(ref)
            if not views:
                raise fail(f"{ref} has no stories now")
            # the ones we can open; if none, opening the first says why not
            ids = [v.id for v in views if v.text is not None] or [views[0].id]
        else:
            ids = [await client.stories.find_story(ref)]
        return [await client.stories.open_story(i) for i in ids]

    views = run(with_client(opts, body))
    with_images = [v for v in views if v.image is not None]
    saved: dict[bytes, Path] = {}
    if out is not None:
        if not with_images:
            raise fail("no image to save: the story is text only")
        for i, v in enumerate(with_images):
            path = _image_path(out, i, len(with_images))
            try:
                path.write_bytes(v.image)
            except OSError as exc:
                raise fail(f"cannot write {path}: {exc.strerror or exc}") from None
            saved[v.id] = path
    for v in views:
        lines = [f"@{v.handle or '?'}  {fmt_time(v.posted_at)}"
                 + ("  (close friends)" if v.close_friends else "")]
        if v.text:
            lines.append(v.text)
        if v.has_image:
            lines.append(f"image saved to {saved[v.id]}" if v.id in saved
                         else f"[image, {len(v.image or b'')} bytes: save it with -o]")
        emit(opts, story_json(v, saved=saved.get(v.id)), "\n".join(lines))


@story_app.command("viewers")
def story_viewers(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Your story's id, or a 6+ digit prefix.")],
    json_out: JsonOpt = False,
) -> None:
    """Who opened one of your stories (from their view receipts). --json: one a line."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> tuple[bytes, list[Any]]:
        await client.sync()  # view receipts arrive as end-to-end messages
        story = await client.stories.find_story(ref)
        return story, await client.stories.viewers(story)

    story, viewers = run(with_client(opts, body))
    if opts.json:
        for v in viewers:
            emit(opts, {"story": story.hex(), "handle": v.handle, "user_id": v.user.hex(),
                        "at": v.at}, "")
    elif not viewers:
        say("(no views yet)")
    else:
        say("\n".join(f"@{v.handle or '?'}  {fmt_time(v.at)}" for v in viewers))


@friends_app.command("add")
def friends_add(ctx: typer.Context, peer: Annotated[str, typer.Argument(help="Handle.")],
                json_out: JsonOpt = False) -> None:
    """Add someone to your close friends (they get your close-friends key end-to-end)."""
    opts = _opts(ctx, json_out)
    run(with_client(opts, lambda client: client.stories.add_close_friend(peer)))
    who = peer.removeprefix("@").lower()
    emit(opts, {"handle": who, "close_friend": True}, f"@{who} is a close friend")


@friends_app.command("remove")
def friends_remove(ctx: typer.Context, peer: Annotated[str, typer.Argument(help="Handle.")],
                   json_out: JsonOpt = False) -> None:
    """Take someone off your close friends (the key rotates: they can't open later ones)."""
    opts = _opts(ctx, json_out)
    run(with_client(opts, lambda client: client.stories.remove_close_friend(peer)))
    who = peer.removeprefix("@").lower()
    emit(opts, {"handle": who, "close_friend": False}, f"@{who} is no longer a close friend")


@friends_app.command("list")
def friends_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Your close friends. --json: one a line."""
    opts = _opts(ctx, json_out)
    friends = run(with_client(opts, lambda client: client.stories.close_friends()))
    if opts.json:
        for user, handle in friends:
            emit(opts, {"handle": handle, "user_id": user.hex()}, "")
    else:
        say("\n".join(f"@{h or '?'}" for _, h in friends) if friends
                   else "(no close friends)")
