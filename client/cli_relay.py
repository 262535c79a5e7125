"""`tenchat relay known|trust`: the relays this home has met, and accepting a renamed one.

The client pins the name each relay announces per relay URL on first use
(client/known_relays.py, like SSH's known_hosts) and refuses a relay that later
announces another name at the same URL. `relay trust` is how the user accepts
such a change after checking it with the relay's operator.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .cli import Options, app, emit, fail, fmt_time, run

relay_app = typer.Typer(help="Relays met before: their pinned names.", no_args_is_help=True)
app.add_typer(relay_app, name="relay")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _opts(ctx: typer.Context, json_out: bool) -> Options:
    opts: Options = ctx.obj
    return Options(opts.home, opts.relay, opts.json or json_out, opts.passphrase_file)


@relay_app.command("known")
def relay_known(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Each relay URL met, the name it announced and when it was pinned."""
    from ..common.errors import TenchatError
    from .known_relays import KnownRelays, known_relays_path

    opts = _opts(ctx, json_out)
    try:
        pins = KnownRelays(known_relays_path(opts.home)).load()
    except TenchatError as exc:
        raise fail(str(exc)) from None
    for origin, entry in sorted(pins.items()):
        since = entry.get("since")
        emit(opts, {"relay": origin, "name": entry.get("name"), "since": since},
             f"{origin}  {entry.get('name')!r}  since "
             f"{fmt_time(since) if isinstance(since, int) else '?'}")
    if not pins and not opts.json:
        typer.echo("(no relays met yet)")


@relay_app.command("trust")
def relay_trust(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Argument(
        help="The relay URL [default: --relay, else the identity's relay].")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Accept the name a relay announces now, in place of the one pinned on first use."""
    from ..common.identity import relay_origin
    from .connection import announced_name
    from .known_relays import KnownRelays, known_relays_path
    from .service import ca_file_of

    opts = _opts(ctx, json_out)

    async def body() -> tuple[str, str | None, str]:
        target = url or opts.relay
        if target is None:
            from .cli import open_client

            client: Any = await open_client(opts)
            target = client.relay_url
            await client.close()
        if "," in target:
            raise fail(f"relay trust takes one URL of {target}; run it for each that changed")
        try:
            origin = relay_origin(target)
        except ValueError as exc:
            raise fail(str(exc)) from None
        name = await announced_name(target, ca_file=ca_file_of(opts.home, target))
        known = KnownRelays(known_relays_path(opts.home))
        old = known.get(origin)
        known.pin(origin, name)
        return origin, old, name

    origin, old, name = run(body())
    emit(opts, {"relay": origin, "name": name, "was": old},
         f"{origin} is now trusted as {name!r}"
         + (f" (was {old!r})" if old is not None and old != name else ""))
