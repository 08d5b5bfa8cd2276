"""A private PostgreSQL cluster for tests: Debian's server binaries, a free port, all in /tmp.

``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` account
that Debian's package creates and every server command runs through ``runuser``; as any other
user it runs as that user. The cluster listens on 127.0.0.1 (a free port) and on a unix socket
in its own folder, trusts local connections, and preloads pg_stat_statements (what ``lineage
harvest sql --dsn`` reads). deploy/local/bootstrap.sh installs the package.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import free_port

SUPERUSER = "postgres"


def server_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb (Debian's layout)."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not found:
        initdb = shutil.which("initdb")
        return Path(initdb).resolve().parent if initdb else None

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", path.parent.name))

    return max(found, key=version)


class PrivatePostgres:
    """One cluster of one's own; :meth:`start`, :meth:`stop`, :meth:`dsn`, :meth:`run`."""

    def __init__(self, bindir: Path, settings: Sequence[str] = ()) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="lineage-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.settings = ["listen_addresses=127.0.0.1", "fsync=off",
                         "shared_preload_libraries=pg_stat_statements",
                         "pg_stat_statements.track=top", *settings]
        self.owner: str | None = None
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(SUPERUSER)
            except KeyError:
                pytest.fail("running as root, PostgreSQL needs the 'postgres' account, which "
                            "Debian's postgresql package creates: run deploy/local/bootstrap.sh")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self.owner = SUPERUSER

    def _server(self, *argv: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self.owner is not None:
            command = ["runuser", "-u", self.owner, "--", *command]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120,
                              check=False, cwd=self.root)
        if proc.returncode != 0:
            log = self.log.read_text() if self.log.is_file() else ""
            raise AssertionError(f"{' '.join(argv[:1])} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}{proc.stderr}\n{log[-3000:]}")
        return proc

    def start(self) -> PrivatePostgres:
        self._server("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                     "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        options = " ".join([f"-p {self.port}", f"-k {self.root}",
                            *(f"-c {s}" for s in self.settings)])
        self._server("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                     "-o", options, "start")
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").is_file():
            self._server("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    @property
    def namespace(self) -> str:
        """OpenLineage's namespace of this server."""
        return f"postgres://127.0.0.1:{self.port}"

    def run(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Execute ``sql`` (one statement, or several without parameters); the last rows."""
        with psycopg.connect(self.dsn(database), autocommit=True) as conn:
            cursor = conn.execute(sql.encode())
            return cursor.fetchall() if cursor.description else []
