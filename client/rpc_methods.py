"""The daemon's named methods, each a `tenchat --json` command with named parameters.

A method here *is* a CLI command: its parameters become the command's arguments and its
result is the command's ``--json`` output (one object, or a list of the objects it prints
one a line). So the RPC and the CLI cannot drift apart — the same code parses, acts and
shapes the answer — and every field is documented once, in docs/cli.md; docs/rpc.md
gives each method's request and response. ``tests/client/test_rpc_docs.py`` checks that
every name in :data:`METHODS` (and the daemon's own ``subscribe``, ``unsubscribe``,
``cli``) has its section there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .rpc import INVALID_PARAMS, RpcError

__all__ = ["CliMethod", "Params", "METHODS"]


class Params:
    """Typed reads of a request's named params; a wrong or missing one is INVALID_PARAMS."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def _get(self, name: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = self.raw.get(name, default)
        if value is _REQUIRED:
            raise RpcError(INVALID_PARAMS, f"missing parameter {name!r}")
        if value is not default and (not isinstance(value, kind) or isinstance(value, bool)
                                     and kind is not bool):
            raise RpcError(INVALID_PARAMS, f"parameter {name!r} has the wrong type")
        return value

    def text(self, name: str) -> str:
        return str(self._get(name, str, _REQUIRED))

    def opt_text(self, name: str) -> str | None:
        value = self._get(name, str, None)
        return None if value is None else str(value)

    def number(self, name: str, default: int) -> int:
        return int(self._get(name, int, default))

    def flag(self, name: str) -> bool:
        return bool(self._get(name, bool, False))

    def texts(self, name: str, *, required: bool = True) -> list[str]:
        value = self._get(name, list, _REQUIRED if required else [])
        if not all(isinstance(v, str) for v in value):
            raise RpcError(INVALID_PARAMS, f"parameter {name!r} must be a list of strings")
        return list(value)

    def numbers(self, name: str) -> list[int]:
        value = self._get(name, list, [])
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise RpcError(INVALID_PARAMS, f"parameter {name!r} must be a list of numbers")
        return list(value)


_REQUIRED = object()


@dataclass(frozen=True)
class CliMethod:
    """``argv(params)`` is the command line after ``tenchat --json``; ``many``: the result
    is the list of the objects the command prints (else the one it prints);
    ``streams``: with ``follow``, each object goes out as a ``message`` notification."""

    argv: Callable[[Params], list[str]]
    many: bool = False
    streams: bool = False


def _opt(flag: str, value: str | None) -> list[str]:
    return [] if value is None else [flag, value]


def _on(flag: str, value: bool) -> list[str]:
    return [flag] if value else []


def _send(p: Params) -> list[str]:
    to, group = p.opt_text("to"), p.opt_text("group")
    if (to is None) == (group is None):
        raise RpcError(INVALID_PARAMS, 'give "to" (a handle) or "group" (a group name)')
    head = ["send"] if to is not None else ["group", "send"]
    return [*head, *_opt("--reply-to", p.opt_text("reply_to")),
            *_opt("--attach", p.opt_text("attach")), *_opt("--message-id", p.opt_text("id")),
            "--", to or group or "", p.opt_text("text") or ""]


METHODS: dict[str, CliMethod] = {
    "whoami": CliMethod(lambda p: ["whoami"]),
    "send": CliMethod(_send),
    "receive": CliMethod(lambda p: ["inbox", *_on("--follow", p.flag("follow"))],
                         many=True, streams=True),
    "read": CliMethod(lambda p: ["read", "--", p.text("conversation")]),
    "history": CliMethod(lambda p: ["history", "-n", str(p.number("limit", 50)),
                                    *_on("--offline", p.flag("offline")),
                                    "--", p.text("conversation")], many=True),
    "react": CliMethod(lambda p: ["react", *_on("--remove", p.flag("remove")), "--",
                                  p.text("conversation"), p.text("id"), p.text("emoji")]),
    "edit": CliMethod(lambda p: ["edit", "--", p.text("conversation"), p.text("id"),
                                 p.text("text")]),
    "delete": CliMethod(lambda p: ["delete", "--", p.text("conversation"), p.text("id")]),
    "contacts.list": CliMethod(lambda p: ["contacts", "list"], many=True),
    "contacts.add": CliMethod(lambda p: ["contacts", "add", "--", p.text("peer")]),
    "contacts.block": CliMethod(lambda p: ["contacts", "block", "--", p.text("peer")]),
    "contacts.unblock": CliMethod(lambda p: ["contacts", "unblock", "--", p.text("peer")]),
    "groups.list": CliMethod(lambda p: ["group", "list"], many=True),
    "groups.info": CliMethod(lambda p: ["group", "info", "--", p.text("group")]),
    "groups.create": CliMethod(lambda p: ["group", "create",
                                          *_on("--announce", p.flag("announce")), "--",
                                          p.text("name"),
                                          *p.texts("members", required=False)]),
    "groups.add": CliMethod(lambda p: ["group", "add", "--", p.text("group"),
                                       *p.texts("members")]),
    "groups.leave": CliMethod(lambda p: ["group", "leave", "--", p.text("group")]),
    "polls.create": CliMethod(lambda p: [
        "poll", "create", *_on("--multiple", p.flag("multiple")),
        *_on("--anonymous", p.flag("anonymous")),
        *[arg for option in p.texts("options") for arg in ("--option", option)],
        "--", p.text("conversation"), p.text("question")]),
    "polls.vote": CliMethod(lambda p: ["poll", "vote", "--", p.text("conversation"),
                                       p.text("poll"), *map(str, p.numbers("choices"))]),
    "polls.show": CliMethod(lambda p: ["poll", "show", "--", p.text("conversation"),
                                       p.text("poll")]),
    "stories.list": CliMethod(lambda p: ["story", "list"], many=True),
    "stories.post": CliMethod(lambda p: ["story", "post",
                                         *_on("--close-friends", p.flag("close_friends")),
                                         "--", p.text("text")]),
    "posts.create": CliMethod(lambda p: ["post", *_opt("--audience", p.opt_text("audience")),
                                         "--", p.text("text")]),
    "posts.feed": CliMethod(lambda p: ["feed", "-n", str(p.number("limit", 20)),
                                       *_opt("--from", p.opt_text("from"))], many=True),
    "wallet.list": CliMethod(lambda p: ["wallet", "list"], many=True),
    "wallet.balances": CliMethod(lambda p: ["wallet", "balances",
                                            *_on("--cached", p.flag("cached"))], many=True),
    "settings.get": CliMethod(lambda p: ["settings", "get"]),
}
