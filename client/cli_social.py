"""`tenchat profile|follow|unfollow|followers|following|requests`: the social commands.

Thin like the rest of the CLI (client.cli): parse, call ``client.social``, print.
Each command takes ``--json`` itself as well as the global one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..common.textsafe import for_name, indent_lines
from .cli_common import Options, emit, fail, fmt_time, run, say, with_client

app = typer.Typer()  # this module's commands; client/cli.py adds them to the root

profile_app = typer.Typer(help="Your public profile, and other people's.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _opts(ctx: typer.Context, json_out: bool) -> Options:
    opts: Options = ctx.obj
    return Options(opts.home, opts.relay, opts.json or json_out, opts.passphrase_file)


def profile_json(view: Any) -> dict[str, Any]:
    p = view.profile
    out: dict[str, Any] = {"user_id": view.user.hex(), "handle": view.handle}
    if p is None:
        return out | {"profile": None}
    avatar = None
    if p.avatar is not None:
        avatar = {"hash": p.avatar.hash.hex(), "name": p.avatar.name, "size": p.avatar.size,
                  "mime": p.avatar.mime}
    return out | {"display_name": p.display_name, "bio": p.bio, "private": p.private,
                  "avatar": avatar, "updated_at": p.updated_at}


def profile_lines(view: Any) -> str:
    head = f"@{view.handle or '?'}"
    p = view.profile
    if p is None:
        return f"{head}\n  (no profile)"
    lines = [f"{head}  {for_name(p.display_name)}".rstrip()]
    if p.bio:
        lines.append(f"  {indent_lines(p.bio)}")
    if p.avatar is not None:
        lines.append(f"  avatar: {for_name(p.avatar.name or 'image')} ({p.avatar.size} bytes)")
    lines.append(f"  {'private' if p.private else 'public'} account, "
                 f"updated {fmt_time(p.updated_at)}")
    return "\n".join(lines)


@profile_app.command("set")
def profile_set(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", help="Display name (≤ 64).")] = None,
    bio: Annotated[str | None, typer.Option("--bio", help="About you (≤ 500).")] = None,
    avatar: Annotated[Path | None, typer.Option("--avatar", help="An image file.")] = None,
    private: Annotated[bool | None, typer.Option(
        "--private/--public", help="Private: you approve each follower.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Change your profile (only the fields given); it is signed and public."""
    opts = _opts(ctx, json_out)
    if name is None and bio is None and avatar is None and private is None:
        raise fail("nothing to change: give --name, --bio, --avatar, --private or --public")

    async def body(client: Any) -> Any:
        return await client.social.set_profile(name=name, bio=bio, avatar=avatar,
                                               private=private)

    view = run(with_client(opts, body))
    emit(opts, profile_json(view), profile_lines(view))


@profile_app.command("show")
def profile_show(
    ctx: typer.Context,
    peer: Annotated[str | None, typer.Argument(help="Handle; yours if left out.")] = None,
    avatar_out: Annotated[Path | None, typer.Option(
        "--avatar-out", help="Also save the avatar image to this file.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a profile, after checking its signature."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> Any:
        view = await client.social.profile(peer)
        if avatar_out is not None:
            if view.profile is None or view.profile.avatar is None:
                raise fail("this profile has no avatar")
            await client.download(view.profile.avatar, avatar_out)
        # wallets linked to this identity, each binding verified here (client.wallet); an
        # NFT avatar only while one of them holds it, per the chain
        wallets = [v.address for v in await client.wallet.verified_wallets(view.user)]
        nft = view.profile.nft_avatar if view.profile is not None else None
        if nft is not None and await client.wallet.nft_holder(view.user, nft) is None:
            nft = None
        return view, wallets, nft

    view, wallets, nft = run(with_client(opts, body))
    lines = profile_lines(view) + "".join(f"\n  wallet {a} (verified)" for a in wallets)
    shown = None
    if nft is not None:
        shown = {"chain_id": nft.chain_id, "contract": nft.contract, "token_id": nft.token_id}
        lines += f"\n  avatar NFT #{nft.token_id} of {nft.contract} (chain {nft.chain_id})"
    emit(opts, profile_json(view) | {"wallets": wallets, "nft_avatar": shown}, lines)


@app.command()
def follow(ctx: typer.Context, peer: Annotated[str, typer.Argument(help="Handle.")],
           json_out: JsonOpt = False) -> None:
    """Follow someone (a private account gets a request to approve)."""
    opts = _opts(ctx, json_out)
    state = run(with_client(opts, lambda client: client.social.follow(peer)))
    who = peer.removeprefix("@").lower()
    emit(opts, {"handle": who, "state": state},
         f"following @{who}" if state == "following" else f"asked to follow @{who}")


@app.command()
def unfollow(ctx: typer.Context, peer: Annotated[str, typer.Argument(help="Handle.")],
             json_out: JsonOpt = False) -> None:
    """Stop following someone (or withdraw a request)."""
    opts = _opts(ctx, json_out)
    run(with_client(opts, lambda client: client.social.unfollow(peer)))
    who = peer.removeprefix("@").lower()
    emit(opts, {"handle": who, "state": "none"}, f"not following @{who}")


def _print_list(opts: Options, views: list[Any]) -> None:
    if opts.json:
        for v in views:
            emit(opts, {"handle": v.handle, "user_id": v.user.hex(), "at": v.at,
                        "approved": v.approved}, "")
    else:
        say("\n".join(f"@{v.handle or '?'}" for v in views) if views else "(none)")


@app.command()
def followers(ctx: typer.Context,
              peer: Annotated[str | None, typer.Argument(help="Handle; yours if left out.")
                              ] = None,
              json_out: JsonOpt = False) -> None:
    """Who follows someone (each entry's signatures checked). --json: one object a line."""
    opts = _opts(ctx, json_out)
    _print_list(opts, run(with_client(opts, lambda client: client.social.followers(peer))))


@app.command()
def following(ctx: typer.Context,
              peer: Annotated[str | None, typer.Argument(help="Handle; yours if left out.")
                              ] = None,
              json_out: JsonOpt = False) -> None:
    """Whom someone follows. --json: one object a line."""
    opts = _opts(ctx, json_out)
    _print_list(opts, run(with_client(opts, lambda client: client.social.following(peer))))


@app.command()
def requests(
    ctx: typer.Context,
    approve: Annotated[str | None, typer.Option("--approve", help="Approve this handle.")
                       ] = None,
    deny: Annotated[str | None, typer.Option("--deny", help="Deny this handle.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Pending requests to follow you; --approve or --deny one. --json: one object a line."""
    opts = _opts(ctx, json_out)
    if approve is not None and deny is not None:
        raise fail("give --approve or --deny, not both")

    async def body(client: Any) -> list[Any] | None:
        if approve is not None:
            await client.social.approve(approve)
            return None
        if deny is not None:
            await client.social.deny(deny)
            return None
        return await client.social.requests()  # type: ignore[no-any-return]

    views = run(with_client(opts, body))
    if views is not None:
        _print_list(opts, views)
        return
    who = (approve or deny or "").removeprefix("@").lower()
    state = "approved" if approve is not None else "denied"
    emit(opts, {"handle": who, "state": state}, f"{state} @{who}")


# --- posts ---------------------------------------------------------------------------------

Audience = Annotated[str | None, typer.Option(
    "--audience", help="public, or followers (end-to-end encrypted; a private account's "
    "only choice). Default: public, or followers for a private account.")]


def post_json(v: Any) -> dict[str, Any]:
    images = [{"hash": r.hash.hex(), "name": r.name, "size": r.size, "mime": r.mime}
              for r in v.images]
    return {"id": v.id.hex(), "author": v.handle, "author_id": v.author.hex(),
            "text": v.text, "created_at": v.created_at, "audience": v.audience,
            "images": images, "comments": v.comments, "reactions": dict(v.reactions)}


def post_lines(v: Any) -> str:
    head = f"{v.id.hex()}  @{v.handle or '?'}  {fmt_time(v.created_at)}"
    if v.audience == "followers":
        head += "  (followers)"
    body = v.text if v.text is not None else "[followers-only post you can't read]"
    lines = [head] + [f"  {line}" for line in body.splitlines() or [""]]
    lines += [f"  image: {r.name or 'image'} ({r.size} bytes)" for r in v.images]
    extras = [f"{v.comments} comment{'' if v.comments == 1 else 's'}"]
    extras += [f"{e} {n}" for e, n in sorted(v.reactions.items(), key=lambda kv: -kv[1])]
    lines.append("  " + "  ".join(extras))
    return "\n".join(lines)


@app.command()
def post(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="The post's text (≤ 5000 characters).")],
    image: Annotated[list[Path] | None, typer.Option("--image", help="An image (≤ 4).")
                     ] = None,
    audience: Audience = None,
    filter_: Annotated[str | None, typer.Option(
        "--filter", help="An image filter for every --image: grayscale, sepia, blur[:RADIUS], "
        "pixelate[:SIZE], brightness[:FACTOR], contrast[:FACTOR].")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Publish a signed post to your followers' feeds."""
    opts = _opts(ctx, json_out)
    if audience is not None and audience not in ("public", "followers"):
        raise fail("--audience is public or followers")
    if filter_ is not None and not image:
        raise fail("--filter needs an --image")
    view = run(with_client(opts, lambda client: client.social.post(
        text, images=list(image or []), audience=audience, filter=filter_)))
    emit(opts, post_json(view), f"posted {view.id.hex()} ({view.audience})")


@app.command()
def feed(
    ctx: typer.Context,
    n: Annotated[int, typer.Option("-n", min=1, max=200, help="How many posts.")] = 20,
    before: Annotated[str | None, typer.Option(
        "--before", help="Only posts older than this post id (hex): the next page.")] = None,
    author: Annotated[str | None, typer.Option(
        "--from", help="Only this handle's posts (followed or not).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Posts by whom you follow and by you, newest first (signatures checked;
    followers-only posts opened with their author's audience key). --json: one a line."""
    opts = _opts(ctx, json_out)
    try:
        cursor = bytes.fromhex(before) if before is not None else None
    except ValueError:
        cursor = None
    if before is not None and (cursor is None or len(cursor) != 16):
        raise fail("--before takes a post id (32 hex digits)")

    async def body(client: Any) -> list[Any]:
        await client.sync()  # audience keys arrive as end-to-end messages
        authors = None if author is None else [(await client.resolve(author)).user]
        return await client.social.feed(  # type: ignore[no-any-return]
            limit=n, before=cursor, authors=authors)

    views = run(with_client(opts, body))
    if opts.json:
        for v in views:
            emit(opts, post_json(v), "")
    else:
        say("\n\n".join(post_lines(v) for v in views) if views else "(no posts)")


# --- comments and reactions ----------------------------------------------------------------

PostRef = Annotated[str, typer.Argument(
    help="A post id (hex, from `feed --json`), or a unique prefix of at least 6 digits.")]


def comment_json(v: Any) -> dict[str, Any]:
    return {"id": v.id.hex(), "post_id": v.post_id.hex(), "author": v.handle,
            "author_id": v.author.hex(), "text": v.text, "created_at": v.created_at}


def comment_lines(v: Any) -> str:
    body = v.text if v.text is not None else "[followers-only comment you can't read]"
    return f"@{v.handle or '?'}  {fmt_time(v.created_at)}\n" + "\n".join(
        f"  {line}" for line in body.splitlines() or [""])


@app.command()
def comment(ctx: typer.Context, post_id: PostRef,
            text: Annotated[str, typer.Argument(help="The comment (≤ 2000 characters).")],
            json_out: JsonOpt = False) -> None:
    """Comment on a post (sealed under the post's audience key if it is followers-only)."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> Any:
        await client.sync()  # audience keys arrive as end-to-end messages
        return await client.social.comment(post_id, text)

    view = run(with_client(opts, body))
    emit(opts, comment_json(view), f"commented on {view.post_id.hex()}")


@app.command("react-post")
def react_post(ctx: typer.Context, post_id: PostRef,
               emoji: Annotated[str, typer.Argument(help="The emoji (≤ 16 characters).")],
               remove: Annotated[bool, typer.Option("--remove", help="Withdraw it.")] = False,
               json_out: JsonOpt = False) -> None:
    """React to a post with an emoji (public, on followers-only posts too), or --remove it.
    A reaction is one emoji; a relay keeps a few per person and post (3 by default)."""
    opts = _opts(ctx, json_out)
    from tenchat.common.social import is_reaction_emoji

    if not remove and not is_reaction_emoji(emoji):
        typer.echo(f"error: {emoji!r} is not one emoji: a reaction is a single emoji",
                   err=True)
        raise typer.Exit(2)

    async def body(client: Any) -> Any:
        await client.sync()
        return await client.social.react(post_id, emoji, remove=remove)

    view = run(with_client(opts, body))
    emit(opts, {"post_id": view.id.hex(), "emoji": emoji, "removed": remove},
         f"{'removed' if remove else 'reacted'} {emoji} on {view.id.hex()}")


@app.command()
def comments(
    ctx: typer.Context, post_id: PostRef,
    n: Annotated[int, typer.Option("-n", min=1, max=200, help="How many comments.")] = 50,
    before: Annotated[str | None, typer.Option(
        "--before", help="Only comments older than this comment id (hex).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """A post's comments, newest first (signatures checked). --json: one a line."""
    opts = _opts(ctx, json_out)
    try:
        cursor = bytes.fromhex(before) if before is not None else None
    except ValueError:
        cursor = None
    if before is not None and (cursor is None or len(cursor) != 16):
        raise fail("--before takes a comment id (32 hex digits)")

    async def body(client: Any) -> Any:
        await client.sync()
        return await client.social.comments(post_id, limit=n, before=cursor)

    _, views = run(with_client(opts, body))
    if opts.json:
        for v in views:
            emit(opts, comment_json(v), "")
    else:
        say("\n\n".join(comment_lines(v) for v in views) if views else "(no comments)")
