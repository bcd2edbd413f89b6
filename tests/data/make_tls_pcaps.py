"""Make the TLS test captures: SIP over TLS 1.2 and 1.3 on loopback, with their key logs.

    .venv/bin/python tests/data/make_tls_pcaps.py     # as root (tcpdump on lo)

A UAC and a UAS in this process exchange an INVITE with SDP, its 200 OK, ACK and
BYE over TLS (Python's ssl, a throwaway self-signed certificate), once per TLS
version, while tcpdump records port 5061 on loopback. Python's ssl writes the
NSS key log (SSLKEYLOGFILE format) that `harness analyze --keylog` and tshark read.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

OUT = Path(__file__).resolve().parent / "pcaps"
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"


def _cert(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sip.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    kp, cp = tmp / "key.pem", tmp / "cert.pem"
    kp.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return kp, cp


def _msg(first: str, cseq: str, body: str = "") -> bytes:
    head = [
        first,
        "Via: SIP/2.0/TLS 127.0.0.1:5062;branch=z9hG4bK-tls-1",
        "From: <sips:alice@127.0.0.1>;tag=a1",
        "To: <sips:bob@127.0.0.1>" + (";tag=b1" if not first.startswith("INVITE") else ""),
        "Call-ID: tls-call-1@127.0.0.1",
        f"CSeq: {cseq}",
        "Contact: <sips:alice@127.0.0.1:5062;transport=tls>",
    ]
    if body:
        head.append("Content-Type: application/sdp")
    head.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


def _read_msg(s: ssl.SSLSocket) -> bytes:
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, _, rest = buf.partition(b"\r\n\r\n")
    n = int(
        next(
            h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
        )
    )
    while len(rest) < n:
        rest += s.recv(4096)
    return head + b"\r\n\r\n" + rest


def call(version: ssl.TLSVersion, keylog: Path, kp: Path, cp: Path, port: int) -> None:
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.load_cert_chain(cp, kp)
    srv.minimum_version = srv.maximum_version = version
    cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cli.check_hostname, cli.verify_mode = False, ssl.CERT_NONE
    cli.minimum_version = cli.maximum_version = version
    cli.keylog_filename = str(keylog)
    if version == ssl.TLSVersion.TLSv1_2:
        cli.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    ls = socket.create_server(("127.0.0.1", port))

    def uas() -> None:
        conn, _ = ls.accept()
        with srv.wrap_socket(conn, server_side=True) as s:
            _read_msg(s)  # INVITE
            s.sendall(_msg("SIP/2.0 200 OK", "1 INVITE", SDP.replace("alice", "bob")))
            _read_msg(s)  # ACK
            _read_msg(s)  # BYE
            s.sendall(_msg("SIP/2.0 200 OK", "2 BYE"))
            time.sleep(0.2)

    t = threading.Thread(target=uas)
    t.start()
    with socket.create_connection(("127.0.0.1", port)) as raw, cli.wrap_socket(raw) as s:
        s.sendall(_msg(f"INVITE sips:bob@127.0.0.1:{port} SIP/2.0", "1 INVITE", SDP))
        _read_msg(s)
        s.sendall(_msg(f"ACK sips:bob@127.0.0.1:{port} SIP/2.0", "1 ACK"))
        s.sendall(_msg(f"BYE sips:bob@127.0.0.1:{port} SIP/2.0", "2 BYE"))
        _read_msg(s)
    t.join()
    ls.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kp, cp = _cert(Path(tmp))
        for name, version in (("tls12", ssl.TLSVersion.TLSv1_2), ("tls13", ssl.TLSVersion.TLSv1_3)):
            pcap, keylog = OUT / f"sip-{name}.pcap", OUT / f"sip-{name}.keys"
            keylog.unlink(missing_ok=True)
            cap = subprocess.Popen(
                ["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-w", str(pcap), "tcp port 5061"],
                stderr=subprocess.PIPE,
            )
            time.sleep(1.0)
            call(version, keylog, kp, cp, 5061)
            time.sleep(0.5)
            cap.terminate()
            cap.wait(10)
            print(f"{pcap}: {pcap.stat().st_size} bytes, {keylog}", file=sys.stderr)


if __name__ == "__main__":
    main()
