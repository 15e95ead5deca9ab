"""A TLS failure ends in a sentence a person acts on, not urllib3's repr of pools and
retries: a certificate the run does not trust names why and the setting that mends it
(REQUESTS_CA_BUNDLE); an https:// URL for a plain HTTP server says so."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import policy_dict, run_cli, sim_env, write_policy

RAW = ("Max retries", "Caused by", "Tracked(", "SSLError(", "HTTPSConnectionPool")


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[int]:
    """A loopback port that completes TLS handshakes with a self-signed certificate (and
    then hangs up): a client that verifies certificates refuses it."""
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass  # the client refused the certificate, as it should
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(5)
    listener.close()


def run_against(tmp_path: Path, start_sim, base_url: str):
    sim = start_sim(attempts_per_campaign=10)
    doc = policy_dict(list(sim.campaign_ids)[:1])
    doc["connection"]["base_url"] = base_url
    doc["retry"]["max_attempts"] = 2
    policy = write_policy(tmp_path / "policy.yaml", doc)
    env = sim_env(sim)
    del env["CXONE_BASE_URL"]  # the policy's URL, not the simulator's
    return run_cli(["run", str(policy), "--state", str(tmp_path / "state")], env)


def test_an_untrusted_certificate_names_why_and_what_mends_it(tmp_path, start_sim, tls_server):
    ran = run_against(tmp_path, start_sim, f"https://127.0.0.1:{tls_server}")
    out = ran.stdout + ran.stderr
    assert ran.returncode != 0, out
    assert "TLS failed: the server's certificate was not accepted (self" in out, out[-3000:]
    assert "signed certificate)" in out
    assert "REQUESTS_CA_BUNDLE" in out
    for raw in RAW:
        assert raw not in out, f"{raw!r} in: {out[-3000:]}"
    assert "Traceback" not in out


def test_https_to_a_plain_http_server_says_so(tmp_path, start_sim):
    sim = start_sim(attempts_per_campaign=10)
    ran = run_against(tmp_path, start_sim, sim.base_url.replace("http://", "https://"))
    out = ran.stdout + ran.stderr
    assert ran.returncode != 0, out
    assert "TLS failed: the server did not answer in TLS" in out, out[-3000:]
    for raw in RAW:
        assert raw not in out, f"{raw!r} in: {out[-3000:]}"
