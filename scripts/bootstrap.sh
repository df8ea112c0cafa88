# Sourced by scripts/test and scripts/run: make sure uv and the locked environment exist.
# Needs only python3 (>= 3.11) on the machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if command -v uv >/dev/null 2>&1; then
  UV=(uv)
elif python3 -m uv --version >/dev/null 2>&1; then
  UV=(python3 -m uv)
else
  echo "waqr: installing uv (the project's package manager) with pip" >&2
  python3 -m pip install --quiet --disable-pip-version-check uv
  UV=(python3 -m uv)
fi
"${UV[@]}" sync --frozen --quiet

# System packages the tests need: a real Redis server (the suite starts its own on a free
# port). Installed from Debian's packages when missing and we may.
need_debs() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  # Debian's chromium, driven by Playwright for the UI tests (Playwright's own browser
  # download is not used: it cannot be fetched here and is not needed).
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # Debian's docker-compose parses and validates compose.yaml (no Docker daemon needed).
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  # promtool (from Debian's prometheus) checks and unit-tests the shipped alert rules.
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  # wrk drives the side-by-side benchmark (its smoke run is a test).
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  printf '%s\n' "${missing[@]}"
}
