"""`tenchat wallet …`, `tenchat gift`, `tenchat gifts`: the wallet commands.

Thin like the rest of the CLI (client.cli): parse, call ``client.wallet``, print.
Imports nothing of web3 itself; the wallet core loads it only when a command needs
the chain or a key.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..cli_common import Options, emit, fail, fmt_time, run, say, with_client

app = typer.Typer()  # this module's commands; client/cli.py adds them to the root

wallet_app = typer.Typer(help="Ethereum wallets: keys, links, balances, NFTs.",
                         no_args_is_help=True)
app.add_typer(wallet_app, name="wallet")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
AddressArg = Annotated[str, typer.Argument(help="A wallet address (0x…).")]


def _opts(ctx: typer.Context, json_out: bool) -> Options:
    opts: Options = ctx.obj
    return Options(opts.home, opts.relay, opts.json or json_out, opts.passphrase_file)


def _amount(units: int | None, decimals: int) -> str:
    from .service import format_amount

    return "?" if units is None else format_amount(units, decimals)


# --- keys -----------------------------------------------------------------------------------


@wallet_app.command("create")
def wallet_create(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Make a new wallet key, stored encrypted with this identity's keys."""
    opts = _opts(ctx, json_out)
    address = run(with_client(opts, lambda client: client.wallet.create()))
    emit(opts, {"address": address}, f"created wallet {address}")


@wallet_app.command("import")
def wallet_import(
    ctx: typer.Context,
    key: Annotated[str | None, typer.Argument(
        help="The private key in hex ('-' reads stdin).")] = None,
    keystore: Annotated[Path | None, typer.Option(
        "--keystore", help="A V3 keystore JSON file instead of a key.")] = None,
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", help="The keystore's password (first line); else "
        "TENCHAT_WALLET_PASSWORD, else a prompt.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Import a wallet from a private key or a V3 keystore file."""
    opts = _opts(ctx, json_out)
    if (key is None) == (keystore is None):
        raise fail("give a private key or --keystore FILE (one of them)")
    if keystore is not None:
        try:
            data = keystore.read_text()
        except OSError as exc:
            raise fail(f"cannot read {keystore}: {exc.strerror or exc}") from None
        password = _keystore_password(password_file)

        async def body(client: Any) -> str:
            return str(await client.wallet.import_keystore(data, password))
    else:
        text = sys.stdin.readline() if key == "-" else str(key)

        async def body(client: Any) -> str:
            return str(await client.wallet.import_key(text))

    address = run(with_client(opts, body))
    emit(opts, {"address": address}, f"imported wallet {address}")


def _keystore_password(path: Path | None) -> str:
    if path is not None:
        try:
            return path.read_text().splitlines()[0]
        except (OSError, IndexError) as exc:
            raise fail(f"cannot read password file {path}: {exc}") from None
    env = os.environ.get("TENCHAT_WALLET_PASSWORD")
    if env is not None:
        return env
    if not sys.stdin.isatty():
        raise fail("no keystore password: pass --password-file or set TENCHAT_WALLET_PASSWORD")
    import getpass

    return getpass.getpass("Keystore password: ")


@wallet_app.command("list")
def wallet_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """The wallets here, and which are linked to this identity (verified)."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> tuple[list[str], set[str]]:
        from ..connection import ConnectionLost, RelayError, RelayUnreachable

        linked: set[str] = set()
        with contextlib.suppress(RelayUnreachable, ConnectionLost, RelayError):
            await client.wallet.renew_links()  # bindings expire unless renewed
            linked = {v.address for v in await client.wallet.verified_wallets(client.user)}
        return await client.wallet.addresses(), linked

    addresses, linked = run(with_client(opts, body))
    if opts.json:
        for a in addresses:
            emit(opts, {"address": a, "linked": a in linked}, "")
    else:
        say("\n".join(f"{a}{'  linked' if a in linked else ''}" for a in addresses)
                   if addresses else "(no wallets)")


@wallet_app.command("remove")
def wallet_remove(ctx: typer.Context, address: AddressArg, json_out: JsonOpt = False) -> None:
    """Delete a wallet key from this device (it stays linked until `wallet unlink`)."""
    opts = _opts(ctx, json_out)
    run(with_client(opts, lambda client: client.wallet.remove(address)))
    emit(opts, {"address": address, "removed": True}, f"removed wallet {address}")


# --- links ----------------------------------------------------------------------------------


@wallet_app.command("link")
def wallet_link(ctx: typer.Context, address: AddressArg, json_out: JsonOpt = False) -> None:
    """Link a wallet to this identity: a SIWE message signed by the wallet, published."""
    opts = _opts(ctx, json_out)
    link = run(with_client(opts, lambda client: client.wallet.link(address)))
    emit(opts, {"address": link.address, "user_id": link.user.hex(),
                "issued_at": link.issued_at, "expires": link.expires},
         f"linked {link.address} (renewed by this client while linked; valid until "
         f"{fmt_time(link.expires)} otherwise)")


@wallet_app.command("unlink")
def wallet_unlink(ctx: typer.Context, address: AddressArg, json_out: JsonOpt = False) -> None:
    """Withdraw a wallet's link from the relay."""
    opts = _opts(ctx, json_out)
    run(with_client(opts, lambda client: client.wallet.unlink(address)))
    emit(opts, {"address": address, "linked": False}, f"unlinked {address}")


@wallet_app.command("signin")
def wallet_signin(ctx: typer.Context, address: AddressArg, json_out: JsonOpt = False) -> None:
    """Sign in to the relay with a linked wallet (SIWE) instead of the identity key."""
    opts = _opts(ctx, json_out)
    authed = run(with_client(opts, lambda client: client.wallet.signin(address)))
    emit(opts, {"user_id": authed.user.hex(), "handle": authed.handle, "wallet": address},
         f"signed in as @{authed.handle} with {address}")


# --- holdings -------------------------------------------------------------------------------


@wallet_app.command("balances")
def wallet_balances(
    ctx: typer.Context,
    cached: Annotated[bool, typer.Option("--cached", help="Don't ask the chains; show the "
                                         "balances read last.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Native and ERC-20 balances of your wallets on every chain with an RPC URL."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> tuple[list[Any], list[str]]:
        if cached:
            return await client.wallet.balances(), []
        return tuple(await client.wallet.refresh_balances())  # type: ignore[return-value]

    rows, errors = run(with_client(opts, body))
    for line in errors:
        say(f"warning: {line}", err=True)
    if opts.json:
        for r in rows:
            emit(opts, {"chain_id": r.chain_id, "address": r.address, "token": r.token,
                        "symbol": r.symbol, "amount": _amount(r.amount, r.decimals),
                        "units": str(r.amount), "updated_at": r.updated_at}, "")
    else:
        say("\n".join(
            f"{r.address}  chain {r.chain_id}  {_amount(r.amount, r.decimals)} {r.symbol}"
            for r in rows) if rows else "(no balances)")


# --- gifts ----------------------------------------------------------------------------------


@app.command()
def gift(
    ctx: typer.Context,
    peer: Annotated[str, typer.Argument(help="Handle of the recipient.")],
    amount: Annotated[str, typer.Argument(help="How much, e.g. 0.5.")],
    token: Annotated[str | None, typer.Argument(
        help="An ERC-20 contract address or a symbol from chains.toml; the native coin if "
        "left out.")] = None,
    chain: Annotated[str | None, typer.Option("--chain", help="Chain name or id.")] = None,
    sender: Annotated[str | None, typer.Option("--from", help="Which of your wallets pays "
                                               "(default: the first).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Sign without asking.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Send tokens to a peer's verified wallet, signed here, and tell them in chat."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> Any:
        plan = await client.wallet.plan_gift(peer, amount, token, chain, sender)
        shown = plan.describe()
        what = (f"{plan.amount} units of UNKNOWN token {plan.token} (not in your token list)"
                if plan.unknown_token else f"{shown['amount']} {plan.symbol}")
        say(
            f"gift to @{plan.handle}: {what} on {plan.chain.name} "
            f"(chain {plan.chain.chain_id})\n"
            f"  from {plan.sender}\n  to   {plan.recipient} (@{plan.handle}'s verified wallet,"
            f" linked {fmt_time(plan.linked_at)}, valid until {fmt_time(plan.link_expires)})\n"
            f"  max network fee {shown['max_fee']} {plan.chain.symbol}\n"
            f"  transaction to sign (EIP-1559): {json.dumps(shown['transaction'])}",
            err=opts.json)
        if not yes and not typer.confirm("Sign and send?", default=False, err=True):
            raise fail("not sent")
        return plan, await client.wallet.send_gift(plan)

    plan, row = run(with_client(opts, body))
    emit(opts, {"tx_hash": "0x" + row.tx_hash.hex(), "chain_id": row.chain_id,
                "to": plan.handle, "status": row.status},
         f"sent 0x{row.tx_hash.hex()} ({row.status})")


@app.command()
def gifts(
    ctx: typer.Context,
    no_refresh: Annotated[bool, typer.Option("--no-refresh", help="Don't ask the chain "
                                             "about pending gifts.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Gifts sent and received, with their status read from the chain."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> tuple[list[Any], dict[bytes, str], list[str]]:
        errors = [] if no_refresh else await client.wallet.track_gifts()
        rows = await client.wallet.gifts()
        names = {r.peer: await client.display_name(r.peer) for r in rows}
        return rows, names, errors

    rows, names, errors = run(with_client(opts, body))
    for line in errors:
        say(f"warning: {line}", err=True)
    for r in rows:
        obj = {"direction": "sent" if r.outgoing else "received", "peer": names[r.peer],
               "chain_id": r.chain_id, "tx_hash": "0x" + r.tx_hash.hex(), "status": r.status,
               "token": r.token, "symbol": r.symbol if r.amount is not None else "",
               "unknown_token": r.unknown_token,
               "amount": _amount(r.amount, r.decimals) if r.amount is not None else None,
               "from": r.sender, "to": r.recipient, "reason": r.reason,
               "created_at": r.created_at}
        arrow = "→" if r.outgoing else "←"
        what = ("?" if r.amount is None
                else f"{r.amount} units of UNKNOWN token {r.token}" if r.unknown_token
                else f"{obj['amount']} {r.symbol}")
        emit(opts, obj, f"{fmt_time(r.created_at)} {arrow} @{names[r.peer]}  {what}  "
                        f"{r.status}{'  ' + r.reason if r.reason else ''}  "
                        f"0x{r.tx_hash.hex()[:16]}…")
    if not rows and not opts.json:
        say("(no gifts)")


# --- NFTs -----------------------------------------------------------------------------------


@wallet_app.command("nfts")
def wallet_nfts(
    ctx: typer.Context,
    contract: Annotated[str, typer.Argument(help="The ERC-721 contract (0x…).")],
    chain: Annotated[str | None, typer.Option("--chain", help="Chain name or id.")] = None,
    peer: Annotated[str | None, typer.Option("--of", help="Whose (a handle); yours if left "
                                             "out.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """ERC-721 tokens of a contract held by your (or a peer's) verified wallets."""
    opts = _opts(ctx, json_out)
    rows = run(with_client(opts, lambda client: client.wallet.nfts(contract, chain, peer)))
    if opts.json:
        for wallet, token_id in rows:
            emit(opts, {"wallet": wallet, "contract": contract, "token_id": str(token_id)}, "")
    else:
        say("\n".join(f"{wallet}  #{token_id}" for wallet, token_id in rows)
                   if rows else "(none)")


@wallet_app.command("avatar")
def wallet_avatar(
    ctx: typer.Context,
    contract: Annotated[str, typer.Argument(help="The ERC-721 contract (0x…).")],
    token_id: Annotated[int, typer.Argument(help="The token id.", min=0)],
    chain: Annotated[str | None, typer.Option("--chain", help="Chain name or id.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show an NFT one of your linked wallets holds as your profile avatar."""
    opts = _opts(ctx, json_out)
    run(with_client(opts, lambda client: client.wallet.set_nft_avatar(contract, token_id,
                                                                     chain)))
    emit(opts, {"contract": contract, "token_id": str(token_id)},
         f"avatar: token {token_id} of {contract}")


@wallet_app.command("gate")
def wallet_gate(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="Group name or id.")],
    contract: Annotated[str, typer.Argument(help="The ERC-721 contract members must hold.")],
    chain: Annotated[str | None, typer.Option("--chain", help="Chain name or id.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Make a group NFT-gated (admins): new members must hold a token of the contract."""
    opts = _opts(ctx, json_out)
    gate = run(with_client(opts, lambda client: client.wallet.set_gate(group, contract, chain)))
    emit(opts, {"group": group, "chain_id": gate.chain_id, "contract": gate.contract},
         f"{group}: members must hold a token of {gate.contract} (chain {gate.chain_id})")


@wallet_app.command("gate-check")
def wallet_gate_check(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="Group name or id.")],
    json_out: JsonOpt = False,
) -> None:
    """Re-check, on the chain, which members of an NFT-gated group hold a token."""
    opts = _opts(ctx, json_out)

    async def body(client: Any) -> tuple[Any, dict[str, str | None]]:
        gate, held = await client.wallet.gate_status(group)
        info = await client.groups.info(await client.groups.require(group))  # names members
        return gate, {info.handles.get(u) or await client.display_name(u): w
                      for u, w in held.items()}

    gate, held = run(with_client(opts, body))
    for name, wallet in sorted(held.items()):
        emit(opts, {"member": name, "holds": wallet is not None, "wallet": wallet},
             f"@{name}  {'holds (' + wallet + ')' if wallet else 'holds no token'}")


# --- contract hooks -------------------------------------------------------------------------


@app.command()
def watch(
    ctx: typer.Context,
    contract: Annotated[str, typer.Argument(help="The contract (0x…).")],
    event: Annotated[str, typer.Argument(
        help="The event, e.g. 'Transfer(address indexed from, address indexed to, "
        "uint256 value)'.")],
    group: Annotated[str, typer.Option("--group", help="The group to post into.")],
    confirmations: Annotated[int, typer.Option(
        "--confirmations", min=0, help="Blocks on top of an event's block before it is "
        "posted (reorg safety).")] = 12,
    chain: Annotated[str | None, typer.Option("--chain", help="Chain name or id.")] = None,
    interval: Annotated[float, typer.Option("--interval", min=0.05,
                                            help="Seconds between polls.")] = 4.0,
    from_block: Annotated[int | None, typer.Option(
        "--from-block", min=0, help="First block to read (default: the next one; a "
        "restarted watch goes on where it stopped).")] = None,
) -> None:
    """A bot: post a contract's events into a group, N confirmations deep. Runs until
    interrupted; prints each posted event (JSON with --json). Logs of another shape
    (e.g. an ERC-721 Transfer for an ERC-20 signature) are skipped with a warning."""
    opts: Options = ctx.obj

    async def body(client: Any) -> None:
        from .hooks import parse_event
        from .hooks import watch as run_watch

        spec = parse_event(event)
        ch = client.wallet.chain(chain)
        if not client.wallet._address(contract):
            return
        await client.sync()
        gid = await client.groups.require(group)

        def posted(item: dict[str, Any]) -> None:
            emit(opts, item, f"posted {item['event']} from block {item['block']}")
            sys.stdout.flush()

        def started(block: int) -> None:
            emit(opts, {"watching": spec.signature, "from_block": block},
                 f"watching {spec.signature} from block {block}")
            sys.stdout.flush()

        def skipped(block: int, count: int, why: str) -> None:
            typer.echo(f"warning: skipped a log of another shape in block {block} ({why}); "
                       f"{count} skipped so far", err=True)

        await run_watch(client, ch, contract, spec, gid, confirmations=confirmations,
                        interval=interval, on_post=posted, from_block=from_block,
                        on_start=started, on_skip=skipped)

    run(with_client(opts, body))
