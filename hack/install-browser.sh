#!/usr/bin/env bash
# Installs the browser the web tests drive: Debian's `chromium` package (Playwright drives it
# through executable_path; Playwright's own browser builds are never downloaded). Idempotent:
# does nothing when the browser is there already.
#
# Usage: hack/install-browser.sh        GENVID_CHROMIUM overrides the path (default /usr/bin/chromium)
set -euo pipefail

CHROMIUM=${GENVID_CHROMIUM:-/usr/bin/chromium}
if [[ -x $CHROMIUM ]]; then
  exit 0
fi
if [[ $CHROMIUM != /usr/bin/chromium ]]; then
  echo "genvid: GENVID_CHROMIUM=$CHROMIUM is not an executable" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "genvid: the web tests need Chromium at $CHROMIUM (no apt-get here to install it)" >&2
  exit 1
fi
SUDO=()
if [[ $(id -u) != 0 ]]; then
  SUDO=(sudo -n)
fi
echo "genvid: installing Debian's chromium for the web tests"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
  chromium fonts-dejavu-core >/dev/null
"$CHROMIUM" --version
