# Sourced by scripts/demo and scripts/test: installs what is missing on a Debian machine.
#  - PostgreSQL + PostGIS server packages (apt), run by the embedded cluster as user postgres;
#  - a virtualenv in .venv with the project and its test tools (pip, re-run when pyproject.toml changes).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PG_MAJOR="${GRIDMAP_PG_MAJOR:-15}"
APT_PACKAGES=("postgresql-${PG_MAJOR}" "postgresql-${PG_MAJOR}-postgis-3" ${GRIDMAP_EXTRA_APT:-})

note() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*  (install those packages, then run this again)" >&2; return 1; fi
}

install_apt_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=("python3-venv")
  [ ${#missing[@]} -eq 0 ] && return 0
  note "installing ${missing[*]} (apt)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_virtualenv() {
  local stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
  [ -f "$stamp" ] && return 0
  note "installing Python dependencies into .venv (first run takes a few minutes)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import geo, api, maps, shapely, geopandas, fastapi" # fail here, not later
  rm -f .venv/.installed-* && touch "$stamp"
}

# PostgreSQL will not run as root, so the embedded cluster runs as `postgres`, which must be
# able to reach the data folder. If the project sits somewhere it cannot (e.g. under /root),
# keep the cluster in a folder of its own and say so.
choose_home() {
  [ -n "${GRIDMAP_HOME:-}" ] && return 0
  [ "$(id -u)" -eq 0 ] || return 0
  if ! runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
    export GRIDMAP_HOME="/var/lib/gridmap/$(echo "$ROOT" | sha1sum | cut -c1-12)"
    mkdir -p "$GRIDMAP_HOME" && chmod 755 /var/lib/gridmap "$GRIDMAP_HOME"
    note "postgres cannot reach $ROOT; the embedded cluster lives in $GRIDMAP_HOME"
  fi
}

install_apt_packages
install_virtualenv
choose_home
export PATH="$ROOT/.venv/bin:$PATH"
