"""``tenchat-relay admin ...``: operations on a relay's database (relay/admin.py).

They open the database the relay's ``storage`` names — its SQLite file, or the
PostgreSQL database its nodes share (relay/storage/admin.py) — and work while the relay
runs; every running node sees bans within ``ban_poll`` seconds and every other change on
its next read.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from tenchat.common.clock import clock_offset

from .cli import app, fail
from .config import ConfigError, load_config

if TYPE_CHECKING:
    from .storage.admin import Admin

admin_app = typer.Typer(help="Administer a relay's data (also while it runs).",
                        no_args_is_help=True)
app.add_typer(admin_app, name="admin")

T = TypeVar("T")

DataOpt = Annotated[
    Path | None, typer.Option("--data", help="Data directory. [the relay's default]")
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="The relay's TOML config.")]
StorageOpt = Annotated[str | None, typer.Option(
    "--storage", help="sqlite (in the data directory), or the relay's postgresql://USER@HOST/DB."
                      " [the relay's storage]")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _with_db(data: Path | None, config: Path | None, storage: str | None,
             fn: Callable[[Admin], T]) -> T:
    from .storage.admin import AdminError, open_admin

    try:
        cfg = load_config({"data": data, "storage": storage}, os.environ, config)
        with open_admin(cfg.storage, cfg.data) as db:
            return fn(db)
    except (ConfigError, AdminError) as exc:
        raise fail(str(exc)) from None


def _for_user(data: Path | None, config: Path | None, storage: str | None, who: str,
              act: Callable[[Admin, bytes], object]) -> bytes:
    """``act`` on the identity ``who`` names; its public key."""

    def run(db: Admin) -> bytes:
        user = db.resolve(who)
        act(db, user)
        return user

    return _with_db(data, config, storage, run)


def _out(as_json: bool, obj: Any, human: str) -> None:
    typer.echo(json.dumps(obj) if as_json else human)


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise fail(f"{what} must be hex") from None


@admin_app.command()
def users(data: DataOpt = None, storage: StorageOpt = None, config: ConfigOpt = None,
          as_json: JsonOpt = False) -> None:
    """List registered identities: handle, key, banned, queued messages, blob bytes."""
    rows = _with_db(data, config, storage, lambda db: db.users())
    lines = [f"@{u['handle']:<24} {u['user_id']}  queued {u['queued']}  blobs {u['blob_bytes']}"
             + ("  BANNED" if u["banned"] else "")
             + (f"  quota {u['blob_quota']}" if u["blob_quota"] is not None else "")
             for u in rows]
    if as_json:
        for u in rows:
            typer.echo(json.dumps(u))
    else:
        typer.echo("\n".join(lines) if lines else "no users")


@admin_app.command()
def ban(who: Annotated[str, typer.Argument(help="@handle or hex public key.")],
        reason: Annotated[str, typer.Option(help="Kept in the audit log.")] = "",
        data: DataOpt = None, storage: StorageOpt = None, config: ConfigOpt = None,
        as_json: JsonOpt = False) -> None:
    """Ban an identity: it is disconnected and refused from now on."""
    user = _for_user(data, config, storage, who, lambda db, u: db.ban(u, reason))
    _out(as_json, {"banned": user.hex()}, f"banned {user.hex()}")


@admin_app.command()
def unban(who: Annotated[str, typer.Argument(help="@handle or hex public key.")],
          data: DataOpt = None, storage: StorageOpt = None, config: ConfigOpt = None,
          as_json: JsonOpt = False) -> None:
    """Lift a ban."""
    user = _for_user(data, config, storage, who, lambda db, u: db.unban(u))
    _out(as_json, {"unbanned": user.hex()}, f"unbanned {user.hex()}")


@admin_app.command("remove-post")
def remove_post(post: Annotated[str, typer.Argument(help="The post id, hex.")],
                data: DataOpt = None, storage: StorageOpt = None, config: ConfigOpt = None,
                as_json: JsonOpt = False) -> None:
    """Remove a post with its comments and reactions."""
    post_id = _hex(post, "the post id")
    _with_db(data, config, storage, lambda db: db.remove_post(post_id))
    _out(as_json, {"removed_post": post}, f"removed post {post}")


@admin_app.command("remove-comment")
def remove_comment(comment: Annotated[str, typer.Argument(help="The comment id, hex.")],
                   data: DataOpt = None, storage: StorageOpt = None, config: ConfigOpt = None,
                   as_json: JsonOpt = False) -> None:
    """Remove a comment."""
    comment_id = _hex(comment, "the comment id")
    _with_db(data, config, storage, lambda db: db.remove_comment(comment_id))
    _out(as_json, {"removed_comment": comment}, f"removed comment {comment}")


@admin_app.command()
def quota(who: Annotated[str, typer.Argument(help="@handle or hex public key.")],
          blob_bytes: Annotated[int | None, typer.Argument(
              help="Blob bytes this identity may store; leave out with --default.")] = None,
          default: Annotated[bool, typer.Option(
              "--default", help="Go back to the relay's blob_quota.")] = False,
          data: DataOpt = None, storage: StorageOpt = None, config: ConfigOpt = None,
          as_json: JsonOpt = False) -> None:
    """Set one identity's blob storage quota."""
    if (blob_bytes is None) != default:
        raise fail("give a number of bytes, or --default")
    if blob_bytes is not None and blob_bytes < 0:
        raise fail("the quota must not be negative")
    user = _for_user(data, config, storage, who, lambda db, u: db.set_quota(u, blob_bytes))
    _out(as_json, {"user_id": user.hex(), "blob_quota": blob_bytes},
         f"quota of {user.hex()}: {'default' if blob_bytes is None else blob_bytes}")


@admin_app.command()
def invite(count: Annotated[int, typer.Option(help="How many codes.", min=1, max=1000)] = 1,
           expires: Annotated[float, typer.Option(
               help="Days until the codes expire; 0 = never.", min=0)] = 0,
           data: DataOpt = None, storage: StorageOpt = None, config: ConfigOpt = None,
           as_json: JsonOpt = False) -> None:
    """Create one-time invite codes (for registration = "invite-only")."""
    now = time.time_ns() // 1_000_000 + clock_offset(os.environ)  # the relay's clock
    expires_at = int(now + expires * 86_400_000) if expires else 0
    codes = _with_db(data, config, storage, lambda db: db.invite(count, expires_at))
    _out(as_json, {"codes": codes, "expires_at": expires_at}, "\n".join(codes))


@admin_app.command()
def stats(data: DataOpt = None, storage: StorageOpt = None, config: ConfigOpt = None,
          as_json: JsonOpt = False) -> None:
    """Counts: users, queued messages, groups, posts, blobs, bans, open invites."""
    numbers = _with_db(data, config, storage, lambda db: db.stats())
    _out(as_json, numbers, "\n".join(f"{k:<16} {v}" for k, v in numbers.items()))


@admin_app.command()
def audit(limit: Annotated[int, typer.Option(help="The newest N rows.", min=1)] = 50,
          data: DataOpt = None, storage: StorageOpt = None, config: ConfigOpt = None,
          as_json: JsonOpt = False) -> None:
    """Show the audit log: admin actions and failed authentications (repeats from one
    address within audit_window seconds are one row, with ×count)."""
    rows = _with_db(data, config, storage, lambda db: db.audit(limit))
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["at"] / 1000))
        typer.echo(f"{when}Z {r['action']:<16} actor {r['actor'] or 'cli'}"
                   f"  target {r['target'] or '-'}  {r['detail']}"
                   + (f"  ip {r['ip']}" if r["ip"] else "")
                   + (f"  ×{r['count']}" if r["count"] > 1 else ""))
