"""JSON-RPC to an EVM chain through web3.py: balances, EIP-1559 transfers signed
locally, receipts and logs. Only wallet commands import this module (web3 is slow
to import). web3 is synchronous here; the async wrappers run calls in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import requests
from eth_account import Account
from eth_typing import Hash32
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception

from ...common.siwe import keccak256, to_checksum_address
from . import WalletError, restore_recursion_limit
from .chains import Chain

restore_recursion_limit()  # eth-account raised it (see wallet/__init__.py)

if TYPE_CHECKING:
    from web3.types import TxParams

__all__ = ["Evm", "Transfer", "TRANSFER_TOPIC", "ERC20_ABI", "ERC721_ABI", "event_topic"]

T = TypeVar("T")


def event_topic(signature: str) -> bytes:
    return keccak256(signature.encode())


TRANSFER_TOPIC: Final = event_topic("Transfer(address,address,uint256)")
OWNER_OF: Final = keccak256(b"ownerOf(uint256)")[:4]  # ERC-721's function selector

ERC20_ABI: Final = [
    {"name": "balanceOf", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "decimals", "type": "function", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint8"}]},
    {"name": "symbol", "type": "function", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "string"}]},
    {"name": "transfer", "type": "function", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
]
ERC721_ABI: Final = [
    {"name": "ownerOf", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "tokenId", "type": "uint256"}],
     "outputs": [{"name": "", "type": "address"}]},
    {"name": "balanceOf", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "name", "type": "function", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "string"}]},
    {"name": "tokenURI", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "tokenId", "type": "uint256"}],
     "outputs": [{"name": "", "type": "string"}]},
]


@dataclass(frozen=True, slots=True)
class Transfer:
    """A value transfer read from the chain: native (token '') or an ERC-20/721 log."""

    token: str
    sender: str
    recipient: str
    value: int


def _addr_topic(topic: bytes) -> str:
    return to_checksum_address(bytes(topic)[-20:])


class Evm:
    def __init__(self, chain: Chain, *, timeout: float = 10.0) -> None:
        if not chain.rpc:
            raise WalletError(
                f"no RPC URL for chain {chain.name}: set TENCHAT_RPC_{chain.name.upper()} "
                f"or rpc in chains.toml")
        self.chain = chain
        self.w3 = Web3(Web3.HTTPProvider(chain.rpc, request_kwargs={"timeout": timeout}))
        # web3's validation middleware asks the RPC for its chain id before every call and
        # send (three requests for one); _guard checks it once per Evm instead, and every
        # transaction here is built with this chain's id.
        self.w3.middleware_onion.remove("validation")
        self._checked = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a thread, with RPC failures as one-line WalletErrors."""
        return await asyncio.to_thread(self._guard, fn, *args)

    def _guard(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            if not self._checked:
                got = self.w3.eth.chain_id
                if got != self.chain.chain_id:
                    raise WalletError(f"the RPC of {self.chain.name} serves chain id {got}, "
                                      f"not {self.chain.chain_id}")
                self._checked = True
            return fn(*args)
        except WalletError:
            raise
        except ContractLogicError as exc:
            raise WalletError(f"the contract call reverts: {exc}") from None
        except (requests.exceptions.RequestException, OSError) as exc:
            raise WalletError(f"cannot reach the RPC of {self.chain.name} "
                              f"({self.chain.rpc}): {type(exc).__name__}") from None
        except (Web3Exception, ValueError) as exc:
            raise WalletError(f"the RPC of {self.chain.name} refused: {exc}") from None

    # --- reads (call through run) ---------------------------------------------------------

    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def token(self, token: str) -> Any:
        return self.w3.eth.contract(address=Web3.to_checksum_address(token), abi=ERC20_ABI)

    def token_meta(self, token: str) -> tuple[str, int]:
        if not self.w3.eth.get_code(Web3.to_checksum_address(token)):
            raise WalletError(f"{token} is not a contract on {self.chain.name}")
        c = self.token(token)
        return str(c.functions.symbol().call()), int(c.functions.decimals().call())

    def token_balance(self, token: str, address: str) -> int:
        return int(self.token(token).functions.balanceOf(
            Web3.to_checksum_address(address)).call())

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def receipt(self, tx_hash: bytes) -> Any | None:
        try:
            return self.w3.eth.get_transaction_receipt(Hash32(tx_hash))
        except TransactionNotFound:
            return None

    def transaction(self, tx_hash: bytes) -> Any | None:
        try:
            return self.w3.eth.get_transaction(Hash32(tx_hash))
        except TransactionNotFound:
            return None

    def owner_of(self, contract: str, token_id: int) -> str | None:
        # One plain eth_call (selector ‖ uint256): web3's contract object made three
        # requests and ~4 ms of Python per call, and this runs every time an NFT avatar
        # is shown (bench.wallet, "NFT picture, cached").
        data = OWNER_OF + token_id.to_bytes(32, "big")
        try:
            out = bytes(self.w3.eth.call({"to": Web3.to_checksum_address(contract),
                                          "data": data}))
        except ContractLogicError:
            return None  # burnt or never minted
        if len(out) != 32 or any(out[:12]):
            return None  # not an ERC-721's answer
        return None if not any(out) else to_checksum_address("0x" + out[12:].hex())

    def token_uri(self, contract: str, token_id: int) -> str | None:
        """ERC-721 ``tokenURI``; None if the token doesn't exist or has none."""
        c = self.w3.eth.contract(address=Web3.to_checksum_address(contract), abi=ERC721_ABI)
        try:
            return str(c.functions.tokenURI(token_id).call()) or None
        except ContractLogicError:
            return None

    def logs(self, address: str, topics: list[Any], from_block: int, to_block: int) -> list[Any]:
        return list(self.w3.eth.get_logs({
            "address": Web3.to_checksum_address(address), "topics": topics,
            "fromBlock": from_block, "toBlock": to_block}))

    def nfts_of(self, contract: str, owner: str) -> list[int]:
        """Token ids of ERC-721 ``contract`` that ``owner`` holds now: candidates from the
        Transfer logs to ``owner``, each confirmed with ownerOf."""
        owner = Web3.to_checksum_address(owner)
        topic = "0x" + bytes(12).hex() + owner[2:].lower()
        logs = self.logs(contract, ["0x" + TRANSFER_TOPIC.hex(), None, topic], 0,
                         self.block_number())
        ids = sorted({int.from_bytes(bytes(lg["topics"][3]), "big") for lg in logs
                      if len(lg["topics"]) == 4})
        return [i for i in ids if self.owner_of(contract, i) == owner]

    def nft_balance(self, contract: str, owner: str) -> int:
        c = self.w3.eth.contract(address=Web3.to_checksum_address(contract), abi=ERC721_ABI)
        return int(c.functions.balanceOf(Web3.to_checksum_address(owner)).call())

    def transfers_of(self, tx_hash: bytes) -> tuple[Any, list[Transfer]]:
        """(receipt, what moved) for a mined transaction; (None, []) while pending."""
        receipt = self.receipt(tx_hash)
        if receipt is None:
            return None, []
        moved: list[Transfer] = []
        tx = self.transaction(tx_hash)
        if tx is not None and tx["value"] and receipt["status"] == 1:
            moved.append(Transfer("", str(tx["from"]), str(tx["to"]), int(tx["value"])))
        for log in receipt["logs"]:
            topics = log["topics"]
            if len(topics) == 3 and bytes(topics[0]) == TRANSFER_TOPIC:
                moved.append(Transfer(str(log["address"]), _addr_topic(topics[1]),
                                      _addr_topic(topics[2]), int.from_bytes(log["data"], "big")))
        return receipt, moved

    # --- transactions ---------------------------------------------------------------------

    def build_transfer(self, sender: str, recipient: str, amount: int,
                       token: str | None) -> dict[str, Any]:
        """An unsigned EIP-1559 transaction moving ``amount`` base units (gas estimated)."""
        sender = Web3.to_checksum_address(sender)
        recipient = Web3.to_checksum_address(recipient)
        tx: dict[str, Any] = {"type": 2, "chainId": self.chain.chain_id, "from": sender,
                              "nonce": self.w3.eth.get_transaction_count(sender, "pending")}
        if token is None:
            tx |= {"to": recipient, "value": amount, "data": b""}
        else:
            data = self.token(token).encode_abi("transfer", args=[recipient, amount])
            tx |= {"to": Web3.to_checksum_address(token), "value": 0,
                   "data": bytes.fromhex(data[2:])}
        base = int(self.w3.eth.get_block("latest")["baseFeePerGas"])
        tip = int(self.w3.eth.max_priority_fee)
        tx["maxPriorityFeePerGas"] = tip
        tx["maxFeePerGas"] = 2 * base + tip
        try:
            tx["gas"] = int(self.w3.eth.estimate_gas(cast("TxParams", tx)))
        except ContractLogicError as exc:
            raise WalletError(f"the transfer would revert ({exc}); nothing was sent") from None
        return tx

    @staticmethod
    def sign(tx: dict[str, Any], key: bytes) -> tuple[bytes, bytes]:
        """(raw signed transaction, its hash): signed here, the key never leaves."""
        unsigned = {k: v for k, v in tx.items() if k != "from"}
        signed = Account.sign_transaction(unsigned, key)
        return bytes(signed.raw_transaction), bytes(signed.hash)

    def send_raw(self, raw: bytes) -> bytes:
        return bytes(self.w3.eth.send_raw_transaction(raw))
