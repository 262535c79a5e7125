"""TLS: the relay serves wss:// itself (--tls-cert/--tls-key) and the real `tenchat` CLI
connects to it, verifying the certificate: with the relay's CA file it works, without it
the connection is refused."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import Cli
from tests.support.relay import RelayProcess

pytestmark = pytest.mark.slow


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost; (cert, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenchat test relay")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "relay.pem", directory / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


def test_wss_relay_with_and_without_the_ca_file(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    relay = RelayProcess(tmp_path / "data",
                         args=["--tls-cert", str(cert), "--tls-key", str(key)])
    with relay:
        assert relay.url.startswith("wss://127.0.0.1:")
        cli = Cli(tmp_path, relay)
        trusted = cli.env(TENCHAT_CA_FILE=str(cert))
        cli("alice", "init", "--handle", "alice", env=trusted)
        cli("bob", "init", "--handle", "bob", env=trusted)
        cli("alice", "send", "@bob", "over tls", env=trusted)
        lines = cli("bob", "--json", "inbox", env=trusted).json_lines()
        assert [m["text"] for m in lines] == ["over tls"], lines

        # Without the CA file the self-signed certificate does not verify: refused.
        refused = cli("carol", "init", "--handle", "carol", check=False)
        assert refused.code != 0
        assert refused.err.startswith("error: ") and "CERTIFICATE_VERIFY_FAILED" in refused.err
        assert "Traceback" not in refused.err

        # The CA file can also come from the user's config.toml.
        (cli.home("dave")).mkdir(parents=True)
        (cli.home("dave") / "config.toml").write_text(f'ca_file = "{cert}"\n')
        cli("dave", "init", "--handle", "dave")

        # Plain ws:// to a TLS relay fails cleanly too.
        plain = cli("erin", "init", "--handle", "erin", check=False,
                    env=cli.env(TENCHAT_RELAY=relay.url.replace("wss://", "ws://")))
        assert plain.code != 0 and plain.err.startswith("error: ")


def test_tls_cert_without_key_is_a_config_error(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    relay = RelayProcess(tmp_path / "data", args=["--tls-cert", str(cert)])
    with pytest.raises(Exception, match="tls_cert and tls_key go together"):
        relay.start()
