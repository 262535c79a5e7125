"""nft_media: which token URIs are followed, data: URIs, metadata, the cache (no network
but a loopback HTTP server for the refusal)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tenchat.client.wallet import WalletError, nft_media

GATEWAY = "https://gw.example/ipfs/"


def test_ipfs_goes_through_the_gateway() -> None:
    assert nft_media.resolve("ipfs://bafy/1.json", GATEWAY) == (GATEWAY + "bafy/1.json", True)
    assert nft_media.resolve("ipfs://ipfs/bafy", GATEWAY) == (GATEWAY + "bafy", True)
    assert nft_media.resolve("https://x.example/a.png", GATEWAY) == (
        "https://x.example/a.png", False)


@pytest.mark.parametrize("uri", ["file:///etc/passwd", "ftp://x/y", "javascript:alert(1)",
                                 "/etc/passwd", "ipfs://"])
def test_other_schemes_are_refused(uri: str) -> None:
    with pytest.raises(WalletError):
        nft_media.resolve(uri, GATEWAY)


def test_data_uris_base64_and_percent_encoded() -> None:
    meta = {"image": "data:image/svg+xml,%3Csvg%3E%3C/svg%3E"}
    uri = "data:application/json;base64," + base64.b64encode(json.dumps(meta).encode()).decode()
    raw = nft_media.read_uri(uri, nft_media.MAX_METADATA, GATEWAY)
    image, inline = nft_media.image_from_metadata(raw)
    assert inline is None and image == meta["image"]
    assert nft_media.read_uri(image, nft_media.MAX_IMAGE, GATEWAY) == b"<svg></svg>"
    with pytest.raises(WalletError, match="larger than"):
        nft_media.read_uri("data:,"+"a" * 20, 10, GATEWAY)


def test_metadata_without_an_image_or_not_json() -> None:
    assert nft_media.image_from_metadata(b'{"image_data": "<svg/>"}') == (None, b"<svg/>")
    with pytest.raises(WalletError, match="no image"):
        nft_media.image_from_metadata(b'{"name": "x"}')
    with pytest.raises(WalletError, match="not JSON"):
        nft_media.image_from_metadata(b"\x89PNG")


def test_a_token_url_on_a_local_address_is_refused() -> None:
    with pytest.raises(WalletError, match="local address"):
        nft_media.read_uri("http://127.0.0.1:9/meta.json", nft_media.MAX_METADATA, GATEWAY)
    with pytest.raises(WalletError, match="local address"):
        nft_media.read_uri("http://10.1.2.3/x", nft_media.MAX_METADATA, GATEWAY)


def test_the_cache_round_trips(tmp_path: Path) -> None:
    assert nft_media.cached(tmp_path, 1, "0xAb", "7") is None
    nft_media.store(tmp_path, 1, "0xAb", "7", b"picture")
    assert nft_media.cached(tmp_path, 1, "0xab", "7") == b"picture"  # address case ignored
    assert nft_media.cached(tmp_path, 1, "0xab", "8") is None
