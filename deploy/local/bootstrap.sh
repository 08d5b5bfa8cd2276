#!/usr/bin/env bash
# One setup step for both README commands: system tools (Java 17, Maven; Prometheus when asked),
# the .venv with the project and its dev extras, and the Kafka + Neo4j jars from Maven Central.
# A second run is fast: pip runs only when pyproject.toml changed, Maven only when a pom changed.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf '[setup] %s\n' "$*"; }
fail() { printf '[setup] error: %s\n[setup] hint: %s\n' "$1" "$2" >&2; exit 1; }

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    fail "missing system packages: $*" "install them with your package manager (Debian: apt-get install $*)"
  fi
  say "installing $* (apt-get)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
      || fail "apt-get could not install $*" "run 'apt-get update' and retry"
  fi
}

missing=()
command -v java >/dev/null || [ -n "${JAVA_HOME:-}" ] || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
if [ "${LINEAGE_STACK__WITH_PROMETHEUS:-false}" = true ] && ! command -v prometheus >/dev/null; then
  missing+=(prometheus)
fi
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || fail "$("$PYTHON" --version 2>&1) is too old" "install Python 3.11 or newer, or set PYTHON=/path/to/python3.11"

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv || fail "python -m venv failed" "apt-get install python3-venv"
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  say "installing the project and its dev extras into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev]' || fail "pip install failed" "see the pip output above"
  rm -f .venv/.installed-* && touch "$stamp"
fi

say "resolving the Kafka and Neo4j jars (cached after the first run)"
.venv/bin/lineage stack fetch | sed 's/^/[setup] /'
