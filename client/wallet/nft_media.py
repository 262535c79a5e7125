"""An NFT's picture: its ERC-721 ``tokenURI`` metadata, then the metadata's image, fetched
over HTTP(S), through an IPFS gateway (``ipfs://``) or decoded from a ``data:`` URI, and
kept in ``HOME/nft-cache`` so that showing it again takes one file read.

Everything here comes from whoever made the token: untrusted. Only ``https``, ``http``,
``ipfs`` and ``data`` URIs are followed, never a file; metadata is at most
:data:`MAX_METADATA` bytes and an image :data:`MAX_IMAGE`; an ``http(s)`` URL from the
token whose host is a loopback, private or link-local address is refused (a token can't
make the client probe its own network); the IPFS gateway is the user's choice
(``TENCHAT_IPFS_GATEWAY``, default :data:`DEFAULT_GATEWAY`). Fetching reveals the viewer's
IP address to the host serving the picture, as any web image does.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import socket
import urllib.parse
import urllib.request
from pathlib import Path

from . import WalletError

__all__ = ["DEFAULT_GATEWAY", "MAX_METADATA", "MAX_IMAGE", "gateway", "resolve", "read_uri",
           "image_from_metadata", "cache_path", "cached", "store"]

DEFAULT_GATEWAY = "https://ipfs.io/ipfs/"
MAX_METADATA = 256 * 1024
MAX_IMAGE = 5 * 1024 * 1024
TIMEOUT = 10.0
SCHEMES = ("https", "http", "ipfs", "data")


def gateway() -> str:
    url = os.environ.get("TENCHAT_IPFS_GATEWAY", "") or DEFAULT_GATEWAY
    return url if url.endswith("/") else url + "/"


def resolve(uri: str, ipfs_gateway: str) -> tuple[str, bool]:
    """(the URL to fetch, whether it came from the user's gateway); WalletError for a
    scheme not followed."""
    uri = uri.strip()
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme not in SCHEMES:
        raise WalletError(f"the token's URI is not https, http, ipfs or data: {uri[:60]!r}")
    if scheme == "ipfs":
        path = uri[len("ipfs://"):] if uri.lower().startswith("ipfs://") else uri[5:]
        path = path.removeprefix("ipfs/").lstrip("/")
        if not path:
            raise WalletError("an empty ipfs:// URI")
        return ipfs_gateway + path, True
    return uri, False


def _decode_data(uri: str, limit: int) -> bytes:
    head, _, payload = uri.partition(",")
    if not _:
        raise WalletError("a data: URI without a comma")
    if head.lower().endswith(";base64"):
        try:
            data = base64.b64decode(payload, validate=False)
        except ValueError:
            raise WalletError("a data: URI with bad base64") from None
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    if len(data) > limit:
        raise WalletError(f"the token's data is larger than {limit:,} bytes")
    return data


def _check_host(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError as exc:
        raise WalletError(f"cannot resolve {host!r}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (address.is_private or address.is_loopback or address.is_link_local
                or address.is_reserved or address.is_multicast or address.is_unspecified):
            raise WalletError(f"the token points at a local address ({host}); not fetched")


def read_uri(uri: str, limit: int, ipfs_gateway: str) -> bytes:
    """The bytes a token URI names (blocking: run it in a thread)."""
    url, trusted = resolve(uri, ipfs_gateway)
    if url.lower().startswith("data:"):
        return _decode_data(url, limit)
    if not trusted:
        _check_host(url)
    request = urllib.request.Request(url, headers={"User-Agent": "tenchat",
                                                   "Accept": "*/*"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
            data: bytes = answer.read(limit + 1)
    except (OSError, ValueError) as exc:
        raise WalletError(f"cannot fetch the token's {url[:60]}: {exc}") from None
    if len(data) > limit:
        raise WalletError(f"the token's {url[:60]} is larger than {limit:,} bytes")
    return data


def image_from_metadata(raw: bytes) -> tuple[str | None, bytes | None]:
    """ERC-721 metadata JSON → (the image URI, or the inline ``image_data`` bytes)."""
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise WalletError("the token's metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise WalletError("the token's metadata is not a JSON object")
    for key in ("image", "image_url"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip(), None
    data = meta.get("image_data")
    if isinstance(data, str) and data.strip():
        return None, data.encode()[:MAX_IMAGE]
    raise WalletError("the token's metadata names no image")


def cache_path(home: Path, chain_id: int, contract: str, token_id: str) -> Path:
    name = hashlib.blake2b(f"{chain_id}:{contract.lower()}:{token_id}".encode(),
                           digest_size=16).hexdigest()
    return home / "nft-cache" / name


def cached(home: Path, chain_id: int, contract: str, token_id: str) -> bytes | None:
    try:
        return cache_path(home, chain_id, contract, token_id).read_bytes()
    except OSError:
        return None


def store(home: Path, chain_id: int, contract: str, token_id: str, data: bytes) -> None:
    path = cache_path(home, chain_id, contract, token_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
