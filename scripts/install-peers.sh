#!/usr/bin/env bash
# Installs the third-party peers the conformance suites need: Python packages
# pinned in scripts/requirements.txt into .venv, and Debian packages.
# Idempotent; safe to run on a fresh machine (as root) or again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if grep -qv '^\s*\(#\|$\)' scripts/requirements.txt; then
  stamp=.venv/.requirements.sha
  want=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
    echo "$want" > "$stamp"
  fi
fi

# Debian packages (one line per package, installed only when missing).
debs=()
for pkg in $(grep -v '^\s*\(#\|$\)' scripts/debian-packages.txt 2>/dev/null || true); do
  dpkg -s "$pkg" >/dev/null 2>&1 || debs+=("$pkg")
done
if [ ${#debs[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi
