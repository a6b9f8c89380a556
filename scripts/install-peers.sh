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

# pion/webrtc peer (conformance/peers/pion_call) for the interop suite, built
# offline: Debian ships pion as Go sources in /usr/share/gocode/src and there
# is no module proxy, so the build runs in GOPATH mode with a private GOPATH
# holding a copy of the peer. Its go.mod makes Go's minimal module
# compatibility resolve the `github.com/pion/webrtc/v3` imports to the
# unversioned directories Debian installs. Rebuilt only when the sources, Go
# or the pion package change.
pion_src=conformance/peers/pion_call
pion_out=target/peers
pion_stamp=$pion_out/pion_call.sha
pion_want=$( (cat "$pion_src/main.go" "$pion_src/go.mod"; go version; dpkg-query -W golang-github-pion-webrtc.v3-dev) | sha256sum | cut -d' ' -f1)
if [ ! -x "$pion_out/pion_call" ] || [ "$(cat "$pion_stamp" 2>/dev/null)" != "$pion_want" ]; then
  gopath=$(pwd)/$pion_out/gopath
  rm -rf "$gopath/src/pion_call"
  mkdir -p "$gopath/src/pion_call"
  cp "$pion_src/main.go" "$pion_src/go.mod" "$gopath/src/pion_call/"
  (cd "$gopath/src/pion_call" &&
    GO111MODULE=off GOFLAGS= GOPROXY=off GOPATH="/usr/share/gocode:$gopath" GOCACHE="$gopath/cache" \
      go build -o "$gopath/pion_call.new" .)
  mv "$gopath/pion_call.new" "$pion_out/pion_call"
  echo "$pion_want" > "$pion_stamp"
fi
