"""Finding Java and resolving the stack's JVM artifacts from Maven Central.

Each service has a pom in ``deploy/local/jvm/<service>/pom.xml``; Maven resolves it into the local
repository (``~/.m2``) and writes the classpath, which is cached in the state folder next to the
pom's hash, so a second ``stack up`` starts without running Maven at all.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from core.errors import StackError

MIN_JAVA = 17
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"


def find_java(java_home: Path | None = None) -> Path:
    """The ``java`` executable to use, checked to be Java 17 or newer.

    Looks in ``java_home`` (setting), then ``$JAVA_HOME``, then ``PATH``.
    """
    home = java_home or (Path(os.environ["JAVA_HOME"]) if os.environ.get("JAVA_HOME") else None)
    java = home / "bin" / "java" if home else None
    if java is None:
        found = shutil.which("java")
        java = Path(found) if found else None
    if java is None or not java.is_file():
        where = f"in {home}" if home else "on PATH"
        raise StackError(
            f"Java was not found {where}",
            hint="install OpenJDK 17 (apt-get install openjdk-17-jre-headless) "
            "or set LINEAGE_STACK__JAVA_HOME / JAVA_HOME",
        )
    major = java_major_version(java)
    if major < MIN_JAVA:
        raise StackError(
            f"{java} is Java {major}; Kafka 4 and Neo4j 5 need Java {MIN_JAVA} or newer",
            hint="install OpenJDK 17 or point LINEAGE_STACK__JAVA_HOME at one",
        )
    return java


def java_major_version(java: Path) -> int:
    """The major version ``java -version`` reports (``1.8`` counts as 8)."""
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except OSError as exc:
        raise StackError(f"{java} cannot be run: {exc.strerror}", hint="check JAVA_HOME") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise StackError(f"{java} did not report a version", hint="check JAVA_HOME")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def resolve_classpath(pom_dir: Path, cache_dir: Path) -> str:
    """The classpath of the artifacts ``pom_dir/pom.xml`` names, resolving them when needed.

    The result is cached in ``cache_dir`` under the pom's hash and re-resolved when the pom
    changes or a jar has disappeared from the local Maven repository.
    """
    pom = pom_dir / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    cached = cache_dir / f"{pom_dir.name}-{digest}.classpath"
    if cached.is_file():
        classpath = cached.read_text(encoding="utf-8").strip()
        if classpath and all(Path(jar).is_file() for jar in classpath.split(os.pathsep)):
            return classpath
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven (mvn) is not installed, so the Kafka and Neo4j jars cannot be resolved",
            hint="apt-get install maven, or run `make setup`",
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    out_file = cache_dir / f"{pom_dir.name}-{digest}.tmp"
    proc = subprocess.run(
        [mvn, "-B", "-q", "-f", str(pom), f"{DEPENDENCY_PLUGIN}:build-classpath",
         f"-Dmdep.outputFile={out_file}"],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0 or not out_file.is_file():
        raise StackError(
            f"Maven could not resolve the {pom_dir.name} artifacts: {_maven_cause(proc.stdout)}",
            hint="check that Maven Central is reachable (proxy, ~/.m2/settings.xml) "
            f"and that {pom} names versions that exist",
        )
    out_file.replace(cached)
    return cached.read_text(encoding="utf-8").strip()


def _maven_cause(output: str) -> str:
    """The most telling line of Maven's error output."""
    errors = [
        re.sub(r"\x1b\[[0-9;]*m", "", line).removeprefix("[ERROR]").strip()
        for line in output.splitlines()
        if "[ERROR]" in line
    ]
    for line in errors:
        if "Could not" in line or "Failed to" in line or "Non-resolvable" in line:
            return line[:300]
    return errors[0][:300] if errors else "mvn exited with an error"
