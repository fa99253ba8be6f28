#!/usr/bin/env bash
# Browser tests need headless Chromium (Debian's package) and Playwright for Python.
# Never runs `playwright install`: the tests drive /usr/bin/chromium via executable_path.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
fi
PY="${PYTHON:-$(dirname "$0")/../.venv/bin/python}"
"$PY" -c "import playwright" 2>/dev/null || "$PY" -m pip install --quiet "playwright>=1.40"
/usr/bin/chromium --version
