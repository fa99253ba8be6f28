#!/usr/bin/env bash
# The Alertmanager end-to-end test drives Debian's prometheus-alertmanager (alertmanager + amtool);
# install it when missing. The test skips, saying why, if it cannot be had.
set -euo pipefail
if ! command -v prometheus-alertmanager >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends prometheus-alertmanager
fi
prometheus-alertmanager --version 2>&1 | head -n1
