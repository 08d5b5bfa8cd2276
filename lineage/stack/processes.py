"""Starting and stopping the stack's own processes, by pid file, never by name.

A process counts as ours only when its pid file exists *and* its command line carries the marker
``-Dlineage.stack=<folder>`` that we started it with; a recycled pid that now belongs to some other
program is never signalled.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports below Linux's ephemeral range (32768 and up).

    Ports from ``bind(0)`` are ephemeral ones, which a stack's own outgoing connections may take
    in the seconds before a service binds them; ports below that range are never handed out
    that way.
    """
    import random

    rng = random.Random()  # noqa: S311 - not for security
    found: list[int] = []
    while len(found) < count:
        port = rng.randrange(20_000, 32_000)
        if port not in found and not port_in_use(host, port):
            found.append(port)
    return found


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR so that our own sockets lingering in TIME_WAIT do not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


@dataclass(frozen=True)
class ManagedProcess:
    """One long-running process of the stack, identified by its folder.

    ``marker`` is the argument that identifies it in ``/proc/<pid>/cmdline``; by default the
    JVM system property ``-Dlineage.stack=<folder>``.
    """

    name: str
    folder: Path
    custom_marker: str | None = None

    @property
    def pid_file(self) -> Path:
        return self.folder / f"{self.name}.pid"

    @property
    def console_log(self) -> Path:
        return self.folder / f"{self.name}.out"

    @property
    def marker(self) -> str:
        return self.custom_marker or f"-Dlineage.stack={self.folder}"

    def pid(self) -> int | None:
        """The pid of our running process, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text(encoding="utf-8").strip())
        except (FileNotFoundError, ValueError):
            return None
        if self._is_ours(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def _is_ours(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
        except OSError:
            return False
        # A zombie (state Z) has exited; only its parent's wait() is missing.
        state = stat.rsplit(")", 1)[-1].split()[0]
        return state != "Z" and self.marker.encode() in cmdline

    def start(self, argv: Sequence[str], env: dict[str, str] | None = None) -> int:
        """Start ``argv`` detached from this terminal, logging to ``console_log``."""
        if self.marker not in argv:
            raise ValueError(f"argv must carry {self.marker} so the process can be recognised")
        self.folder.mkdir(parents=True, exist_ok=True)
        # A service's data and its credentials (Neo4j's dbms/auth.ini) are its owner's only:
        # the folder is closed to others, and what the service writes is created private.
        self.folder.chmod(0o700)
        with self.console_log.open("ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=self.folder,
                start_new_session=True,
                umask=0o077,
            )
        self.pid_file.write_text(f"{proc.pid}\n", encoding="utf-8")
        # Right after the fork the child's /proc cmdline can still be empty; wait until the
        # marker shows, so that pid() recognises the process from now on.
        deadline = time.monotonic() + 5
        while not self._is_ours(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return proc.pid

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout``; True when a process was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._is_ours(pid):
            _reap(pid)
            time.sleep(0.2)
        if self._is_ours(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while self._is_ours(pid):
                _reap(pid)
                time.sleep(0.1)
        _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def tail(self, log: Path | None = None, lines: int = 20) -> str:
        """The last ``lines`` lines of ``log`` (default: the console log)."""
        path = log or self.console_log
        try:
            with path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 64 * 1024))
                text = fh.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return f"(no log at {path})"
        return "\n".join(text.splitlines()[-lines:])


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
