"""Real nginx running the shipped ``deploy/nginx.conf``, TLS and HTTP/2 included, in
front of a real Tocsin server: for ``test_nginx.py``.

The file is used as written except for the few values that name the production
machine, each replaced by plain text substitution (``SUBSTITUTED``), and each required
to occur exactly once so that an edit of the file cannot make a substitution miss
silently:

- the two upstream ``server`` lines: both become the test's Tocsin server;
- ``listen 443``: a random loopback port (TLS and HTTP/2 kept);
- the certificate and key paths: a self-signed certificate made here (``cryptography``);
- the access log path: a file in the test's directory (its format is the file's own).

Around it, a minimal main configuration as Debian's or the Docker image's nginx.conf
gives it: the file is included inside ``http {}``, which also sets an access log of
its own in nginx's default format (``HTTP_LEVEL_LOG``), as those do, so that a test can
show the file's server-level log replaces it. nginx runs in the foreground (``daemon
off``) with its own prefix, pid, error log and temp paths in the test's directory.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.systems import nginx_binary
from tests.support.server import free_port
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "nginx.conf"
SERVER_NAME = "notify.example.com"
"""The file's ``server_name``; the certificate names it (and 127.0.0.1)."""
HTTP_LEVEL_LOG = "http-level-access.log"
ACCESS_LOG = "access.log"


def missing_features() -> str | None:
    """Why this machine's nginx cannot run the file, or None if it can."""
    binary = nginx_binary()
    if binary is None:
        return "nginx is not installed (apt-get install nginx-light)"
    built = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10,
                           check=False).stderr
    for module in ("http_ssl_module", "http_v2_module"):
        if f"--with-{module}" not in built:
            return f"{binary} is built without {module}"
    return None


def substituted(text: str, *, listen_port: int, upstream_port: int, cert: Path,
                key: Path, access_log: Path) -> str:
    """``text`` (the shipped file) with only the machine-specific values replaced."""
    replacements = {
        "server 10.0.0.11:8000;": f"server 127.0.0.1:{upstream_port};",
        "server 10.0.0.12:8000;": f"server 127.0.0.1:{upstream_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{listen_port} ssl http2;",
        "/etc/nginx/certs/fullchain.pem": str(cert),
        "/etc/nginx/certs/privkey.pem": str(key),
        "access_log /var/log/nginx/access.log tocsin_noquery;":
            f"access_log {access_log} tocsin_noquery;",
    }
    for old, new in replacements.items():
        found = text.count(old)
        assert found == 1, f"{old!r} occurs {found} times in {CONF}, expected once"
        text = text.replace(old, new)
    return text


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for ``SERVER_NAME`` and 127.0.0.1 and its key: ``(cert, key)``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName(SERVER_NAME),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class NginxProxy:
    port: int
    directory: Path
    cert: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client_tls(self) -> ssl.SSLContext:
        """A client context trusting only the test's certificate."""
        return ssl.create_default_context(cafile=str(self.cert))

    def access_log(self) -> str:
        return (self.directory / ACCESS_LOG).read_text(errors="replace")

    def http_level_log(self) -> str:
        return (self.directory / HTTP_LEVEL_LOG).read_text(errors="replace")

    def error_log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "error.log").read_text(errors="replace")
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown: master and worker
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_nginx(directory: Path, upstream_port: int, wait: float = 15) -> NginxProxy:
    """nginx with the shipped file in front of ``127.0.0.1:upstream_port``, listening
    (TLS) once this returns."""
    binary = nginx_binary()
    assert binary is not None
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(directory)
    port = free_port()
    site = directory / "tocsin.conf"
    site.write_text(substituted(CONF.read_text(), listen_port=port,
                                upstream_port=upstream_port, cert=cert, key=key,
                                access_log=directory / ACCESS_LOG))
    # As root the worker would become "nobody", who cannot enter the 0700 temp dir.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(f"    {kind}_temp_path {directory / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (directory / "nginx.conf").write_text(f"""{user}worker_processes 1;
pid {directory / 'nginx.pid'};
error_log {directory / 'error.log'} warn;
events {{
    worker_connections 256;
}}
http {{
{temp}
    access_log {directory / HTTP_LEVEL_LOG};
    include {site};
}}
""")
    proc = subprocess.Popen(
        [binary, "-e", str(directory / "error.log"), "-p", str(directory),
         "-c", str(directory / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = NginxProxy(port, directory, cert, proc)

    def listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}:\n{proxy.error_log()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return True
        return False

    try:
        wait_until(listening, wait, lambda: f"nginx to listen; its error log:\n"
                   f"{proxy.error_log()}", interval=0.05)
    except BaseException:
        proxy.stop()
        raise
    return proxy
