#!/usr/bin/env bash
# Re-vendor the offline GraphiQL playground assets from the npm registry.
#
# The deployment has no CDN access, so the browser must get GraphiQL and React
# from our own server. This script makes that vendoring reproducible: it fetches
# the pinned package versions with `npm pack` (npm checks the registry's
# integrity hash for each tarball) in a scratch directory and copies only the
# prebuilt UMD/production files and LICENSEs into ./assets.
#
# To upgrade: change the versions below, run this script, then update the table
# in assets/README.md and check the page in a browser. React 19 ships no UMD
# build and graphiql 5 ships no UMD build, so do not jump to those majors
# without reworking playground_html().
#
# Needs: npm, tar, sha256sum. Touches nothing outside ./assets and a temp dir.
set -euo pipefail

GRAPHIQL_VERSION="3.9.0"
REACT_VERSION="18.3.1"      # react and react-dom must be the same version
REACT_DOM_VERSION="$REACT_VERSION"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/assets"
work="$(mktemp -d "${TMPDIR:-/tmp}/playground-assets.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent \
    "graphiql@$GRAPHIQL_VERSION" \
    "react@$REACT_VERSION" \
    "react-dom@$REACT_DOM_VERSION" >/dev/null

# Unpack each tarball into its own folder (every npm tarball has a package/ root).
unpack() {  # unpack NAME VERSION
    mkdir "$1"
    tar -xzf "$1-$2.tgz" -C "$1" --strip-components=1
}
unpack graphiql "$GRAPHIQL_VERSION"
unpack react "$REACT_VERSION"
unpack react-dom "$REACT_DOM_VERSION"

mkdir -p "$dest"
# source-in-tarball  ->  file name in assets/
copy() { install -m 0644 "$work/$1" "$dest/$2"; }
copy graphiql/graphiql.min.js              graphiql.min.js
copy graphiql/graphiql.min.css             graphiql.min.css
copy graphiql/LICENSE                      graphiql.LICENSE
copy react/umd/react.production.min.js     react.production.min.js
copy react/LICENSE                         react.LICENSE
copy react-dom/umd/react-dom.production.min.js  react-dom.production.min.js
copy react-dom/LICENSE                     react-dom.LICENSE

echo "Vendored graphiql@$GRAPHIQL_VERSION, react@$REACT_VERSION, react-dom@$REACT_DOM_VERSION into $dest"
cd "$dest"
# Compare with the checksums listed in assets/README.md.
sha256sum graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js
