#!/usr/bin/env bash
# Installs what the test-suite needs beyond Python packages. Idempotent; safe to run on a fresh machine.
# - chromium: the HTML report test opens the report in a real headless browser.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ((${#need[@]})); then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-services: installing ${need[*]} (Debian packages)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "test-services: missing ${need[*]}; the tests that need them will fail" >&2
  fi
fi
