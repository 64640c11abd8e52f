#!/usr/bin/env bash
# The Subresource Integrity hash of the script the docs page (/api/docs) loads:
# `@scalar/api-reference`'s standalone build, from jsDelivr, at the version pinned in
# crates/http/src/routes/docs.rs. jsDelivr serves a package's files byte for byte as the
# npm registry has them, so the hash is computed from the package npm hands out
# (`npm pack` checks the tarball against the registry's own sha512 integrity).
#
#   scripts/scalar-sri.sh               checks the hash in docs.rs against the registry
#   scripts/scalar-sri.sh 1.77.0        prints the two constants for another version,
#                                       to copy into docs.rs
#   scripts/scalar-sri.sh --cdn [VER]   also hashes the file as jsDelivr serves it
#                                       (needs cdn.jsdelivr.net to be reachable)
#
# Needs npm, tar and openssl. Exits non-zero when the hash in docs.rs is not the file's.
set -euo pipefail
cd "$(dirname "$0")/.."

docs=crates/http/src/routes/docs.rs
package=@scalar/api-reference

cdn=false
if [[ "${1:-}" == "--cdn" ]]; then
    cdn=true
    shift
fi

# `const NAME: &str = "value";`, possibly with the value on the next line.
constant() {
    sed -n "/const $1: &str/,/;/p" "$docs" | grep -o '"[^"]*"' | head -n 1 | tr -d '"'
}
pinned_version="$(constant SCALAR_VERSION)"
pinned_integrity="$(constant SCALAR_INTEGRITY)"
file="$(constant SCALAR_FILE)"
if [[ -z "$pinned_version" || -z "$pinned_integrity" || -z "$file" ]]; then
    echo "scalar-sri: cannot read SCALAR_VERSION, SCALAR_FILE and SCALAR_INTEGRITY in $docs" >&2
    exit 2
fi
version="${1:-$pinned_version}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

tarball="$(cd "$work" && npm pack --silent "$package@$version" | tail -n 1)"
tar -xzf "$work/$tarball" -C "$work" "package/$file" package/package.json
sri() { echo "sha384-$(openssl dgst -sha384 -binary | openssl base64 -A)"; }
integrity="$(sri <"$work/package/$file")"
browser="$(grep -o '"browser": *"[^"]*"' "$work/package/package.json" | sed 's/.*"\.\{0,1\}\/\{0,1\}\([^"]*\)"$/\1/' || true)"

url="https://cdn.jsdelivr.net/npm/$package@$version/$file"
echo "$url"
echo "$integrity"
if [[ -n "$browser" && "$browser" != "$file" ]]; then
    echo "scalar-sri: note: the package's browser build is now $browser, not $file" >&2
fi

if $cdn; then
    served="$(curl -fsSL "$url" | sri)"
    if [[ "$served" != "$integrity" ]]; then
        echo "scalar-sri: jsDelivr serves other bytes: $served" >&2
        exit 1
    fi
    echo "scalar-sri: jsDelivr serves the same file"
fi

if [[ "$version" != "$pinned_version" ]]; then
    echo
    echo "For docs.rs:"
    echo "pub(crate) const SCALAR_VERSION: &str = \"$version\";"
    echo "pub(crate) const SCALAR_INTEGRITY: &str ="
    echo "    \"$integrity\";"
    exit 0
fi
if [[ "$integrity" != "$pinned_integrity" ]]; then
    echo "scalar-sri: $docs says $pinned_integrity for $package@$version; the file is $integrity" >&2
    exit 1
fi
echo "scalar-sri: $docs pins $package@$version with its hash"
