#!/usr/bin/env bash
# Refreshes tests/web/vendor/axe.min.js, the accessibility engine the web tests inject into
# each page, from the npm registry (`npm pack`, checked against the pinned integrity). The
# file is checked in, so the tests need neither Node nor the network; run this only to move
# to another version (edit both lines below).
set -euo pipefail

VERSION=4.14.1
INTEGRITY=sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "axe-core@$VERSION" >/dev/null)
TARBALL="$WORK/axe-core-$VERSION.tgz"
ACTUAL="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
if [[ $ACTUAL != "$INTEGRITY" ]]; then
  echo "axe-core $VERSION: integrity $ACTUAL, expected $INTEGRITY" >&2
  exit 1
fi
tar -xzf "$TARBALL" -C "$WORK" package/axe.min.js
cp "$WORK/package/axe.min.js" "$ROOT/tests/web/vendor/axe.min.js"
echo "tests/web/vendor/axe.min.js: axe-core $VERSION"
