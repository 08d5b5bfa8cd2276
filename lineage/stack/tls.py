"""The secured local stack's secrets: a CA, one server certificate, the SCRAM password.

Generated at the first ``lineage stack up --secure`` with the ``openssl`` command line tool and
kept in the state folder (``tls/`` and ``kafka/scram-password``), every file readable by its
owner only. Kafka's SASL_SSL listener and Neo4j's bolt connector present the same server
certificate, which names the stack's host (and ``localhost``), so clients verify it against
``tls/ca.pem`` with host name checks on.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> files = ensure_certificates(folder / "tls", "127.0.0.1")
>>> sorted(p.name for p in (folder / "tls").iterdir())
['ca.key', 'ca.pem', 'revoked', 'server.crt', 'server.key', 'server.pem', 'trusted']
>>> files.ca.stat().st_mode & 0o777 == 0o600
True
>>> shutil.rmtree(folder)
>>> subject_alt_names("127.0.0.1")
'DNS:localhost,IP:127.0.0.1'
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core.errors import StackError

CA_DAYS = 3650
SERVER_DAYS = 825  # the longest validity clients accept for a server certificate


@dataclass(frozen=True)
class TlsFiles:
    """Where the stack's CA and server certificate are."""

    folder: Path

    @property
    def ca(self) -> Path:
        """The CA certificate clients trust (``LINEAGE_KAFKA__SSL_CA_FILE``,
        ``LINEAGE_NEO4J__CA_FILE``)."""
        return self.folder / "ca.pem"

    @property
    def key(self) -> Path:
        """The server's private key (PKCS#8, unencrypted: only its owner can read it)."""
        return self.folder / "server.key"

    @property
    def certificate(self) -> Path:
        """The server's certificate followed by the CA's (Neo4j's public certificate)."""
        return self.folder / "server.crt"

    @property
    def keystore(self) -> Path:
        """Key and certificate chain in one file: Kafka's PEM keystore."""
        return self.folder / "server.pem"

    def complete(self) -> bool:
        """Whether every file exists (a half-written folder is regenerated)."""
        return all(p.is_file() for p in (self.ca, self.key, self.certificate, self.keystore))


def subject_alt_names(host: str) -> str:
    """The server certificate's names: the stack's host, and ``localhost``."""
    names = {"localhost": "DNS:localhost"}
    try:
        ipaddress.ip_address(host)
        names[host] = f"IP:{host}"
    except ValueError:
        names[host] = f"DNS:{host}"
    if host != "127.0.0.1":
        names.setdefault("127.0.0.1", "IP:127.0.0.1")
    return ",".join(sorted(names.values()))


def ensure_certificates(folder: Path, host: str) -> TlsFiles:
    """The CA and server certificate in ``folder``, generated when missing."""
    files = TlsFiles(folder)
    if files.complete():
        return files
    openssl = shutil.which("openssl")
    if openssl is None:
        raise StackError("the secured stack needs the openssl command to make its certificates",
                         hint="apt-get install openssl, or run `make setup`")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    for sub in ("trusted", "revoked"):  # Neo4j's SSL policy expects both folders
        (folder / sub).mkdir(exist_ok=True)
    ca_key, csr, ext = folder / "ca.key", folder / "server.csr", folder / "server.ext"
    ext.write_text(f"subjectAltName={subject_alt_names(host)}\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
                   encoding="utf-8")
    _openssl(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
             "-out", str(files.ca), "-days", str(CA_DAYS), "-subj", "/CN=lineage local stack CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(files.key),
             "-out", str(csr), "-subj", f"/CN={host}")
    server_only = folder / "server-only.crt"
    _openssl(openssl, "x509", "-req", "-in", str(csr), "-CA", str(files.ca), "-CAkey", str(ca_key),
             "-set_serial", f"0x{secrets.token_hex(16)}", "-days", str(SERVER_DAYS),
             "-extfile", str(ext), "-out", str(server_only))
    chain = server_only.read_text(encoding="utf-8") + files.ca.read_text(encoding="utf-8")
    write_private(files.certificate, chain)
    write_private(files.keystore, files.key.read_text(encoding="utf-8") + chain)
    shutil.copyfile(files.ca, folder / "trusted" / "ca.pem")
    for leftover in (csr, ext, server_only):
        leftover.unlink()
    for path in folder.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)
    return files


PASSWORD_ALPHABET = string.ascii_letters + string.digits


def generate_password(length: int = 32) -> str:
    """A random password of letters and digits (about 190 bits at the default length).

    Letters and digits only: a token_urlsafe password starts with ``-`` once in 64 draws, and
    neo4j-admin then reads it as an option and refuses it.

    >>> len(generate_password()), generate_password(8).isalnum()
    (32, True)
    """
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def ensure_secret(path: Path) -> str:
    """The secret kept in ``path``, generated (letters and digits, mode 600) when missing."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, generate_password() + "\n")
    return path.read_text(encoding="utf-8").strip()


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file ``path`` that only its owner can read (mode 600)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _openssl(openssl: str, *args: str) -> None:
    proc = subprocess.run([openssl, *args], capture_output=True, text=True, check=False,
                          timeout=60)
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise StackError(f"openssl {args[0]} failed: {last[0][:300]}",
                         hint="remove the state folder's tls/ to generate the certificates again")
