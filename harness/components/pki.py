"""The run's own certificate authority: TLS certificates for components, made per run.

`run_dir/pki/ca.pem` is the lab's trust anchor: every peer started in the run trusts it,
as a provisioned device would (the Chromium agent imports it into the browser's own NSS
database). A component asks for a certificate for its address: `trusted` (signed by the
run's CA), `expired` (signed by it, validity over yesterday) or `untrusted` (signed by
another CA that nobody trusts). Nothing is reused between runs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Trust = Literal["trusted", "expired", "untrusted"]
CA_FILE = "ca.pem"


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path
    ca: Path
    """The CA certificate that signed it (the run's, or the rogue one for `untrusted`)."""


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rtc-harness run"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _ca(
    folder: Path, stem: str, cn: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, Path]:
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    if cert_path.is_file():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key, cert_path
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return cert, key, cert_path


def issue(
    run_dir: Path,
    address: str,
    name: str,
    trust: Trust = "trusted",
    dns_names: tuple[str, ...] = (),
) -> Issued:
    """A server certificate for `address` (IP SAN and CN) and `dns_names` (DNS SANs: the
    lab's /etc/hosts names, for clients that refuse TLS to a bare IP), as `trust` says."""
    folder = run_dir / "pki"
    folder.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key, ca_path = _ca(folder, "ca", "rtc-harness run CA")  # always the anchor
    if trust == "untrusted":
        ca_cert, ca_key, ca_path = _ca(
            folder, "rogue-ca", "rtc-harness rogue CA (trusted by no one)"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    start, end = (
        (now - dt.timedelta(days=3), now - dt.timedelta(days=1))
        if trust == "expired"
        else (
            now - dt.timedelta(hours=1),
            now + dt.timedelta(days=1),
        )
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(address))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(address))]
                + [x509.DNSName(n) for n in dns_names]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}-{trust}.pem", folder / f"{name}-{trust}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return Issued(cert_path, key_path, ca_path)


def trust_anchor(run_dir: Path) -> Path | None:
    """The run's CA certificate, when a component made one."""
    path = run_dir / "pki" / CA_FILE
    return path if path.is_file() else None


def anchor_above(path: Path) -> Path | None:
    """The run's CA seen from a work directory inside the run (a peer agent's): the first
    `pki/ca.pem` in it or its parents."""
    return next((a for p in (path, *path.parents) if (a := trust_anchor(p)) is not None), None)
