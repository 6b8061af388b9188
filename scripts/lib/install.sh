# shellcheck shell=bash
# Shared by the scripts in scripts/: install missing Debian packages, idempotently.
# Source it; it defines ensure_apt and never runs anything by itself.

# Set once `apt-get update` has run in this process, so it runs at most once.
GATEWATCH_APT_UPDATED=${GATEWATCH_APT_UPDATED:-no}

# Installs the Debian packages among "$@" that are not installed yet (as root, quietly).
ensure_apt() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    return 1
  fi
  if [ "$GATEWATCH_APT_UPDATED" = no ]; then
    echo "apt-get update (to install ${missing[*]})" >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
    GATEWATCH_APT_UPDATED=yes
  fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Creates (or reuses) a Python venv at $1 holding exactly the pip requirements "${@:2}".
ensure_venv() {
  local venv=$1
  shift
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.pins" 2>/dev/null)" = "$*" ]; then
    return 0
  fi
  echo "installing $* into $venv" >&2
  python3 -m venv "$venv" 2>/dev/null || { ensure_apt python3-venv && python3 -m venv "$venv"; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
  printf '%s' "$*" >"$venv/.pins"
}
