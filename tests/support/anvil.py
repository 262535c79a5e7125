"""A real local Ethereum node (anvil, from the npm package @foundry-rs/anvil) on loopback,
and the project's own test contracts (contracts/*.vy, compiled with Vyper) deployed on it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from web3.types import TxParams

ROOT = Path(__file__).resolve().parents[2]

# anvil's well-known first dev account (mnemonic "test test … junk"): funds the tests.
FUNDER_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
CHAIN_ID = 31337


ANVIL_PACKAGE = "@foundry-rs/anvil@1.7.1"  # the same pin as .ci/run


def anvil_binary() -> str:
    """anvil from the npm registry, installed into .ci/node on first use (as .ci/run does),
    so README's test command needs nothing but npm on the machine; or one on PATH."""
    local = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found is not None:
        return found
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("the wallet tests need anvil: install Node.js and npm, or put "
                           f"anvil on PATH (npm install {ANVIL_PACKAGE})")
    import fcntl

    local.parent.parent.parent.mkdir(parents=True, exist_ok=True)
    with open(local.parent.parent.parent / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time
        if not local.exists():
            subprocess.run([npm, "install", "--prefix", str(ROOT / ".ci" / "node"),
                            "--no-audit", "--no-fund", "--ignore-scripts", ANVIL_PACKAGE],
                           check=True, stdout=subprocess.DEVNULL, timeout=600)
    return str(local)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Anvil:
    def __init__(self, *, block_time: float | None = None, chain_id: int = CHAIN_ID) -> None:
        self.chain_id = chain_id  # transact/deploy/call below sign for CHAIN_ID only
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [anvil_binary(), "--host", "127.0.0.1", "--port", str(self.port),
                "--chain-id", str(chain_id), "--silent"]
        if block_time is not None:
            args += ["--block-time", str(block_time)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        from web3 import Web3

        self.w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 10}))
        while True:
            try:
                if self.w3.eth.chain_id == chain_id:
                    break
            except Exception:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"anvil did not start: {self.proc.stderr.read()!r}"  # type: ignore[union-attr]
                                   if self.proc.stderr else "anvil did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def env(self) -> dict[str, str]:
        """How a tenchat client is told about this chain (a custom chain named anvil)."""
        return {"TENCHAT_CHAIN_ANVIL": f"{CHAIN_ID} {self.url} ETH"}

    # --- transactions from the funder (or another key) -----------------------------------

    def transact(self, tx: dict[str, Any], key: bytes = FUNDER_KEY) -> Any:
        from eth_account import Account

        sender = Account.from_key(key).address
        tx = {"chainId": CHAIN_ID, "nonce": self.w3.eth.get_transaction_count(sender, "pending"),
              "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, **tx}
        if "gas" not in tx:
            # tx is the callers' loose dict (plain str addresses); web3 wants its TypedDict
            tx["gas"] = self.w3.eth.estimate_gas(cast("TxParams", {**tx, "from": sender}))
        signed = Account.sign_transaction(tx, key)
        h = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(h, timeout=30)
        assert receipt["status"] == 1, receipt
        return receipt

    def fund(self, address: str, wei: int) -> None:
        self.transact({"to": address, "value": wei})

    def deploy(self, name: str, *args: Any, key: bytes = FUNDER_KEY) -> Any:
        abi, bytecode = compiled(name)
        contract = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        data = contract.constructor(*args).build_transaction({"gas": 0, "maxFeePerGas": 0,
                                                              "maxPriorityFeePerGas": 0,
                                                              "nonce": 0, "chainId": CHAIN_ID})
        receipt = self.transact({"data": data["data"], "value": 0}, key)
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=abi)

    def call(self, fn: Any, key: bytes = FUNDER_KEY) -> Any:
        """Send a contract function call (``contract.functions.f(...)``) as a transaction."""
        data = fn.build_transaction({"gas": 0, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0,
                                     "nonce": 0, "chainId": CHAIN_ID, "from": _addr(key)})
        return self.transact({"to": data["to"], "data": data["data"], "value": 0}, key)

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]


def _addr(key: bytes) -> str:
    from eth_account import Account

    return str(Account.from_key(key).address)


@cache
def compiled(name: str) -> tuple[list[Any], str]:
    """(abi, bytecode) of contracts/NAME.vy, compiled by Vyper (offline)."""
    source = ROOT / "contracts" / f"{name}.vy"
    out = subprocess.run([sys.executable, "-m", "vyper", "-f", "abi,bytecode", str(source)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    abi_line, bytecode = out.stdout.strip().splitlines()
    return json.loads(abi_line), bytecode.strip()
