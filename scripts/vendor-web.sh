#!/usr/bin/env bash
# Vendors the two libraries the web client loads: DOMPurify (sanitises the HTML that
# Markdown becomes) and marked (turns a reply's Markdown into HTML). Each comes from the
# npm registry at the version pinned below, as `npm pack` hands it out; the tarball must
# hash to the sha512 integrity recorded here (the registry's own `dist.integrity`), so a
# changed or substituted package stops the script. The browser builds, their licences
# and a README go to web/vendor/.
#
#   scripts/vendor-web.sh           writes web/vendor/
#   scripts/vendor-web.sh --check   builds the same files again and compares them with
#                                   web/vendor/: exit 1 on any difference
#
# To move to another release: change a version, run the script once to read the new
# integrity it reports, check that string against `npm view <name>@<version>
# dist.integrity`, record it here and run the script again.
#
# Needs npm, node, tar and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

DOMPURIFY_VERSION=3.5.0
DOMPURIFY_INTEGRITY=sha512-LYC0ZkE8P1V42JsRYTwMdme/2ET8SpOc5AA2eOFjP/IadvRd2fwiT4TVz5vkfy0XUx12aS2UaRkTnfVPNOv9vw==
MARKED_VERSION=18.2.1
MARKED_INTEGRITY=sha512-ii4bxCTCqqwpT86XZWgJNs+ZnAIZksmLGYMViWA7PDIXYIeNo1x6cDdX3JOip9NM/cI6p8z57FxliACboTruMA==

vendor=web/vendor
check=false
case "${1:-}" in
    "") ;;
    --check) check=true ;;
    *) echo "usage: scripts/vendor-web.sh [--check]" >&2; exit 2 ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="$work/out"
mkdir -p "$out"

# Downloads name@version into $work/<name>/ (the tarball's package/ folder), after
# checking the tarball against the pinned integrity. npm checks the registry's own
# integrity while packing; hashing the file here again means the pin, not only npm's
# metadata, decides.
fetch() {
    local name="$1" version="$2" pinned="$3" tarball actual
    tarball="$(cd "$work" && npm pack --silent "$name@$version" | tail -n 1)"
    actual="sha512-$(openssl dgst -sha512 -binary <"$work/$tarball" | openssl base64 -A)"
    if [[ "$actual" != "$pinned" ]]; then
        echo "vendor-web: $name@$version is $actual, not the pinned $pinned" >&2
        exit 1
    fi
    mkdir -p "$work/$name"
    tar -xzf "$work/$tarball" -C "$work/$name" --strip-components=1
}

# Copies a script without its trailing `//# sourceMappingURL=` comment: the map is not
# shipped, and web/ files name no other file (the server renames assets at start-up).
copy_script() {
    grep -v '^//# sourceMappingURL=' "$1" >"$2"
}

fetch dompurify "$DOMPURIFY_VERSION" "$DOMPURIFY_INTEGRITY"
fetch marked "$MARKED_VERSION" "$MARKED_INTEGRITY"

copy_script "$work/dompurify/dist/purify.min.js" "$out/purify.min.js"
copy_script "$work/marked/lib/marked.umd.js" "$out/marked.umd.js"
cp "$work/dompurify/LICENSE" "$out/LICENSE.dompurify"
cp "$work/marked/LICENSE" "$out/LICENSE.marked"

cat >"$out/README.md" <<EOF
# Vendored browser libraries

Written by \`scripts/vendor-web.sh\`; do not edit these files by hand.

| file | package | from the tarball | licence |
| --- | --- | --- | --- |
| \`purify.min.js\` | [dompurify](https://www.npmjs.com/package/dompurify) $DOMPURIFY_VERSION | \`dist/purify.min.js\` | Apache-2.0 (the package is \`MPL-2.0 OR Apache-2.0\`): \`LICENSE.dompurify\` |
| \`marked.umd.js\` | [marked](https://www.npmjs.com/package/marked) $MARKED_VERSION | \`lib/marked.umd.js\` | MIT: \`LICENSE.marked\` |

Each tarball comes from the npm registry through \`npm pack\` and must match the sha512
integrity pinned in the script:

- dompurify@$DOMPURIFY_VERSION: \`$DOMPURIFY_INTEGRITY\`
- marked@$MARKED_VERSION: \`$MARKED_INTEGRITY\`

The scripts are the packages' files byte for byte, less their last line, a
\`//# sourceMappingURL=\` comment: the source maps are not shipped.

- Check that these files are what the pinned packages hold: \`scripts/vendor-web.sh --check\`
  (exit 1 on a difference).
- Move to another release: change the version in \`scripts/vendor-web.sh\`, run it once to
  read the new integrity it reports, compare that with
  \`npm view <name>@<version> dist.integrity\`, record it in the script, run the script
  again and commit \`web/vendor/\`.
EOF

if $check; then
    if diff -r "$out" "$vendor" >"$work/diff"; then
        echo "vendor-web: $vendor matches dompurify@$DOMPURIFY_VERSION and marked@$MARKED_VERSION"
        exit 0
    fi
    echo "vendor-web: $vendor differs from what the pinned packages give:" >&2
    head -n 40 "$work/diff" >&2
    exit 1
fi

rm -rf "$vendor"
mkdir -p "$vendor"
cp "$out"/* "$vendor"/
echo "vendor-web: wrote $vendor (dompurify@$DOMPURIFY_VERSION, marked@$MARKED_VERSION)"
