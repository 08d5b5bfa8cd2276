#!/usr/bin/env bash
# One setup step for both README commands: system tools (Java 17, Maven, openssl for the
# secured stack's certificates; Prometheus with
# --with-prometheus or LINEAGE_STACK__WITH_PROMETHEUS=true; PostgreSQL's server, for the SQL
# harvester's tests, with --with-postgresql), the .venv with the project and its dev extras, and
# the Kafka + Neo4j jars from Maven Central.
# A second run is fast: pip runs only when pyproject.toml changed, Maven only when a pom changed.
set -euo pipefail
with_prometheus=${LINEAGE_STACK__WITH_PROMETHEUS:-false}
with_postgresql=false
for arg in "$@"; do
  case "$arg" in
    --with-prometheus) with_prometheus=true ;;
    --with-postgresql) with_postgresql=true ;;
    *) printf 'usage: %s [--with-prometheus] [--with-postgresql]\n' "$0" >&2; exit 2 ;;
  esac
done
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
# `lineage stack up --secure` (and its integration test) generate a CA and certificates with it.
command -v openssl >/dev/null || missing+=(openssl)
if [ "$with_prometheus" = true ] && ! command -v prometheus >/dev/null; then
  missing+=(prometheus)
fi
# Debian keeps the server's programs in /usr/lib/postgresql/<version>/bin, off the PATH.
if [ "$with_postgresql" = true ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    && ! command -v initdb >/dev/null; then
  missing+=(postgresql)
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
  # pip's output goes to a log, shown only when the install fails.
  if ! .venv/bin/python -m pip install -e '.[dev]' > .venv/pip-install.log 2>&1; then
    tail -n 30 .venv/pip-install.log >&2
    fail "pip install failed (full log: .venv/pip-install.log)" "see the pip output above"
  fi
  rm -f .venv/.installed-* && touch "$stamp"
fi

say "resolving the Kafka and Neo4j jars (cached after the first run)"
.venv/bin/lineage stack fetch | sed 's/^/[setup] /'
