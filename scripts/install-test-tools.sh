#!/usr/bin/env bash
# System tools the test suite drives: headless Chromium for the browser tests.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing ${need[*]}: install them with your package manager" >&2
    exit 1
  fi
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Validators for the deployment files (tests/deploy): the Compose CLI built
# from its Go module, actionlint, and promtool from Debian's prometheus
# package. They go to .local/tools/bin; each is skipped when already there.
(
  cd "$(dirname "$0")/.."
  tools="$PWD/.local/tools/bin"
  mkdir -p "$tools"
  compose_version=v2.40.3
  actionlint_version=v1.7.12

  if ! "$tools/docker-compose" version 2>/dev/null | grep -q "$compose_version"; then
    if command -v go >/dev/null 2>&1; then
      echo "building docker-compose $compose_version (a few minutes, once)"
      dir="$(GOTOOLCHAIN=local go mod download -json "github.com/docker/compose/v2@$compose_version" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
      (cd "$dir" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -trimpath \
        -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$compose_version" \
        -o "$tools/docker-compose" ./cmd)
    else
      echo "go not found: skipping docker-compose (tests/deploy will skip its checks)" >&2
    fi
  fi

  if ! "$tools/actionlint" -version 2>/dev/null | grep -q "${actionlint_version#v}"; then
    if command -v go >/dev/null 2>&1; then
      echo "installing actionlint $actionlint_version"
      GOTOOLCHAIN=local GOBIN="$tools" go install \
        "github.com/rhysd/actionlint/cmd/actionlint@$actionlint_version"
    else
      echo "go not found: skipping actionlint" >&2
    fi
  fi

  if [ ! -x "$tools/promtool" ]; then
    if command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
      echo "fetching promtool from the prometheus package"
      work="$(mktemp -d)"
      (
        cd "$work"
        if ! apt-get download -qq prometheus 2>/dev/null; then
          apt-get update -qq
          apt-get download -qq prometheus
        fi
      )
      dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
      install -m 0755 "$work/root/usr/bin/promtool" "$tools/promtool"
      rm -rf "$work"
    else
      echo "apt-get not found: skipping promtool" >&2
    fi
  fi
)
