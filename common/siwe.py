"""EIP-4361 (Sign-In with Ethereum): parse, build and verify SIWE messages.

Pure: the text of a message goes in, a :class:`SiweMessage` comes out; verification
takes the signature and the time as arguments. Signatures are EIP-191
``personal_sign`` over the exact text, recovered with secp256k1 (coincurve) and
compared with the message's EIP-55 address. The relay uses this module without
web3 or eth-account.

    SiweError
    ├── MalformedMessage     the text or a field breaks the EIP-4361 grammar
    ├── InvalidSignature     the signature is malformed, high-s, or recovers another address
    ├── Expired              now ≥ Expiration Time
    ├── NotYetValid          now < Not Before
    ├── DomainMismatch       the message names another domain than expected
    └── NonceMismatch        the message carries another nonce than expected
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from .errors import TenchatError

__all__ = [
    "SiweMessage", "SiweError", "MalformedMessage", "InvalidSignature", "Expired",
    "NotYetValid", "DomainMismatch", "NonceMismatch",
    "parse", "verify", "recover_address", "eip191_hash", "keccak256", "to_checksum_address",
    "is_checksum_address", "parse_datetime", "format_datetime", "parse_signature",
]


class SiweError(TenchatError):
    """A SIWE message did not parse or did not verify; the message says which check."""


class MalformedMessage(SiweError):
    pass


class InvalidSignature(SiweError):
    pass


class Expired(SiweError):
    pass


class NotYetValid(SiweError):
    pass


class DomainMismatch(SiweError):
    pass


class NonceMismatch(SiweError):
    pass


def keccak256(data: bytes) -> bytes:
    from Crypto.Hash import keccak  # here: clients load this module on every command

    return keccak.new(digest_bits=256, data=data).digest()


def to_checksum_address(address: str | bytes) -> str:
    """EIP-55 mixed-case form of a 20-byte address (hex string or bytes)."""
    if isinstance(address, bytes):
        if len(address) != 20:
            raise ValueError("an address is 20 bytes")
        hexaddr = address.hex()
    else:
        hexaddr = address.lower().removeprefix("0x")
        if not re.fullmatch(r"[0-9a-f]{40}", hexaddr):
            raise ValueError(f"not an address: {address[:50]!r}")
    digest = keccak256(hexaddr.encode()).hex()
    return "0x" + "".join(
        ch.upper() if ch.isalpha() and int(digest[i], 16) >= 8 else ch
        for i, ch in enumerate(hexaddr)
    )


def is_checksum_address(text: str) -> bool:
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", text):
        return False
    return to_checksum_address(text) == text


# --- grammar pieces (RFC 3986 and RFC 3339 as EIP-4361 uses them) ------------------------

_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_DEC_OCTET}(?:\.{_DEC_OCTET}){{3}}"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*"
_IP_LITERAL = r"\[[0-9A-Fa-f:.]+\]|\[v[0-9A-Fa-f]+\.[" + _UNRESERVED + _SUB_DELIMS + r":]+\]"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*"
_HOST = rf"(?:{_IP_LITERAL}|{_IPV4}|{_REG_NAME})"
_AUTHORITY_RE: Final = re.compile(rf"(?:{_USERINFO}@)?{_HOST}(?::[0-9]*)?")
_URI_RE: Final = re.compile(
    rf"[A-Za-z][A-Za-z0-9+\-.]*:(?:[{_UNRESERVED}{_SUB_DELIMS}:@/?#\[\]]|{_PCT})*"
)
_SCHEME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_STATEMENT_RE: Final = re.compile(rf"[{_UNRESERVED}{_SUB_DELIMS}:/?#\[\]@ %]*")
_NONCE_RE: Final = re.compile(r"[A-Za-z0-9]{8,}")
_REQUEST_ID_RE: Final = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})*")
_DATETIME_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)

PREAMBLE: Final = " wants you to sign in with your Ethereum account:"


def parse_datetime(text: str) -> datetime:
    """An RFC 3339 date-time (a real calendar date); MalformedMessage otherwise."""
    m = _DATETIME_RE.fullmatch(text)
    if m is None:
        raise MalformedMessage(f"not an RFC 3339 date-time: {text[:40]!r}")
    year, month, day, hour, minute, sec, frac, off = m.groups()
    if off in ("Z", "z"):
        tz: timezone = UTC
    else:
        sign = 1 if off[0] == "+" else -1
        hh, mm = int(off[1:3]), int(off[4:6])
        if hh > 23 or mm > 59:
            raise MalformedMessage(f"bad time zone offset in {text[:40]!r}")
        tz = timezone(sign * timedelta(hours=hh, minutes=mm))
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute),
                        min(int(sec), 59), micro, tzinfo=tz)
    except ValueError as exc:
        raise MalformedMessage(f"not a valid date-time: {text[:40]!r} ({exc})") from None


def format_datetime(when: datetime) -> str:
    """UTC, milliseconds, ``Z``: the form tenchat writes."""
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class SiweMessage:
    """One EIP-4361 message. Times are kept as written (their text is what is signed)."""

    domain: str
    address: str  # EIP-55
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    version: str = "1"
    statement: str | None = None
    scheme: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Every field against the grammar; MalformedMessage names the first bad one."""
        if self.scheme is not None and not _SCHEME_RE.fullmatch(self.scheme):
            raise MalformedMessage(f"bad scheme {self.scheme[:40]!r}")
        if not self.domain or not _AUTHORITY_RE.fullmatch(self.domain):
            raise MalformedMessage(f"domain is not an RFC 3986 authority: {self.domain[:60]!r}")
        if not is_checksum_address(self.address):
            raise MalformedMessage(f"address is not EIP-55: {self.address[:50]!r}")
        if self.statement is not None and (
            "\n" in self.statement or not _STATEMENT_RE.fullmatch(self.statement)
        ):
            raise MalformedMessage("the statement has a character EIP-4361 does not allow")
        if not _URI_RE.fullmatch(self.uri):
            raise MalformedMessage(f"URI is not RFC 3986: {self.uri[:60]!r}")
        if self.version != "1":
            raise MalformedMessage(f"version must be 1, not {self.version[:10]!r}")
        if isinstance(self.chain_id, bool) or not isinstance(self.chain_id, int) \
                or self.chain_id < 1:
            raise MalformedMessage(f"bad chain id {self.chain_id!r}")
        if not _NONCE_RE.fullmatch(self.nonce):
            raise MalformedMessage("the nonce must be at least 8 letters or digits")
        for t in (self.issued_at, self.expiration_time, self.not_before):
            if t is not None:
                parse_datetime(t)
        if self.request_id is not None and not _REQUEST_ID_RE.fullmatch(self.request_id):
            raise MalformedMessage("bad request id")
        for r in self.resources:
            if not _URI_RE.fullmatch(r):
                raise MalformedMessage(f"resource is not RFC 3986: {r[:60]!r}")

    def text(self) -> str:
        """The exact text to sign."""
        head = (f"{self.scheme}://" if self.scheme else "") + self.domain + PREAMBLE
        lines = [head, self.address, ""]
        if self.statement is not None:
            lines.append(self.statement)
        lines += ["", f"URI: {self.uri}", f"Version: {self.version}",
                  f"Chain ID: {self.chain_id}", f"Nonce: {self.nonce}",
                  f"Issued At: {self.issued_at}"]
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {self.expiration_time}")
        if self.not_before is not None:
            lines.append(f"Not Before: {self.not_before}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines.append("Resources:")
            lines += [f"- {r}" for r in self.resources]
        return "\n".join(lines)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> SiweMessage:
        """From the camelCase field names EIP-4361 libraries use (``chainId``, …)."""
        try:
            return cls(
                domain=fields["domain"], address=fields["address"], uri=fields["uri"],
                chain_id=int(fields["chainId"]), nonce=fields["nonce"],
                issued_at=fields["issuedAt"], version=str(fields.get("version", "1")),
                statement=fields.get("statement"), scheme=fields.get("scheme"),
                expiration_time=fields.get("expirationTime"),
                not_before=fields.get("notBefore"), request_id=fields.get("requestId"),
                resources=list(fields.get("resources") or []),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"missing or bad field: {exc}") from None


_TAGS: Final = (("uri", "URI: "), ("version", "Version: "), ("chain_id", "Chain ID: "),
                ("nonce", "Nonce: "), ("issued_at", "Issued At: "))
_OPTIONAL_TAGS: Final = (("expiration_time", "Expiration Time: "),
                         ("not_before", "Not Before: "), ("request_id", "Request ID: "))


def parse(text: str) -> SiweMessage:
    """Parse the text of a SIWE message exactly (fields in order, LF line ends)."""
    lines = text.split("\n")
    if len(lines) < 8:
        raise MalformedMessage("too short for a SIWE message")
    head = lines[0]
    if not head.endswith(PREAMBLE):
        raise MalformedMessage("the first line is not a SIWE preamble")
    origin = head[: -len(PREAMBLE)]
    scheme: str | None = None
    if "://" in origin:
        scheme, origin = origin.split("://", 1)
    address = lines[1]
    if lines[2] != "":
        raise MalformedMessage("expected an empty line after the address")
    # "statement", "" before the URI line; without a statement just "".
    i = 3
    statement: str | None = None
    if lines[i] != "":
        statement = lines[i]
        i += 1
    if lines[i] != "":
        raise MalformedMessage("expected an empty line before the URI")
    i += 1
    values: dict[str, str] = {}
    for name, tag in _TAGS:
        if i >= len(lines) or not lines[i].startswith(tag):
            raise MalformedMessage(f"expected {tag.strip()!r} at line {i + 1}")
        values[name] = lines[i][len(tag):]
        i += 1
    for name, tag in _OPTIONAL_TAGS:
        if i < len(lines) and lines[i].startswith(tag):
            values[name] = lines[i][len(tag):]
            i += 1
    resources: list[str] = []
    if i < len(lines) and lines[i] == "Resources:":
        i += 1
        while i < len(lines) and lines[i].startswith("- "):
            resources.append(lines[i][2:])
            i += 1
    if i != len(lines):
        raise MalformedMessage(f"unexpected text at line {i + 1}")
    if not re.fullmatch(r"[0-9]+", values["chain_id"]):
        raise MalformedMessage("Chain ID must be digits")
    return SiweMessage(
        domain=origin, address=address, uri=values["uri"], chain_id=int(values["chain_id"]),
        nonce=values["nonce"], issued_at=values["issued_at"], version=values["version"],
        statement=statement, scheme=scheme, expiration_time=values.get("expiration_time"),
        not_before=values.get("not_before"), request_id=values.get("request_id"),
        resources=resources,
    )


_SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def parse_signature(text: str) -> bytes:
    """A 65-byte signature from its ``0x`` hex form; InvalidSignature otherwise."""
    if not re.fullmatch(r"0x[0-9a-fA-F]{130}", text):
        raise InvalidSignature("a signature is 0x and 130 hex digits")
    return bytes.fromhex(text[2:])


def eip191_hash(message: bytes) -> bytes:
    """The EIP-191 version 0x45 (``personal_sign``) digest of ``message``."""
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


def recover_address(digest: bytes, signature: bytes) -> str:
    """The EIP-55 address whose key made ``signature`` (r ‖ s ‖ v) over ``digest``."""
    if len(signature) != 65:
        raise InvalidSignature("a signature is 65 bytes")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1) or not (0 < r < _SECP256K1_N) or not (0 < s < _SECP256K1_N):
        raise InvalidSignature("the signature's r, s or v is out of range")
    if s > _SECP256K1_N // 2:
        # (r, n - s) with v flipped verifies too: refuse the twin, as EIP-2 does for
        # transactions, so one signed message has exactly one accepted signature.
        raise InvalidSignature("high-s signature (EIP-2): only the low-s form is accepted")
    from coincurve import PublicKey  # here: clients load this module on every command

    try:
        pub = PublicKey.from_signature_and_message(signature[:64] + bytes([v]), digest,
                                                   hasher=None)
    except Exception:
        raise InvalidSignature("no key recovers from this signature") from None
    return to_checksum_address(keccak256(pub.format(compressed=False)[1:])[-20:])


def verify(message: SiweMessage, signature: bytes, *, now: datetime,
           domain: str | None = None, nonce: str | None = None) -> None:
    """Check ``signature`` (EIP-191 over ``message.text()``) and the message's validity at
    ``now``, and, when given, that it names ``domain`` and carries ``nonce``."""
    if domain is not None and message.domain != domain:
        raise DomainMismatch(f"the message is for {message.domain!r}, not {domain!r}")
    if nonce is not None and message.nonce != nonce:
        raise NonceMismatch("the message carries another nonce")
    if message.expiration_time is not None and now >= parse_datetime(message.expiration_time):
        raise Expired("the message has expired")
    if message.not_before is not None and now < parse_datetime(message.not_before):
        raise NotYetValid("the message is not valid yet")
    signer = recover_address(eip191_hash(message.text().encode()), signature)
    if signer != message.address:
        raise InvalidSignature("the signature is not by the message's address")
