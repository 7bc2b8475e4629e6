#!/bin/sh
# Fetches Trealla Prolog's WebAssembly module from the npm package `trealla` (pinned) into
# trealla/tpl.wasm, as Kettle does when it builds this interpreter (kettle-build's npm_wasm.rs);
# kettle-build's trealla.rs test makes the engine component from it.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm pack trealla@0.17.10 --pack-destination "$tmp" --silent >/dev/null
tar xzf "$tmp"/trealla-0.17.10.tgz -C "$tmp"
mkdir -p trealla
node -e '
const fs = require("fs");
const js = fs.readFileSync(process.argv[1], "utf8");
const found = [...js.matchAll(/AGFzbQ[A-Za-z0-9+\/=]+/g)].map(m => Buffer.from(m[0], "base64"));
const tpl = found.sort((a, b) => b.length - a.length)[0];
fs.writeFileSync(process.argv[2], tpl);
' "$tmp"/package/trealla.js trealla/tpl.wasm
echo "5d6fcf41b960b9ce1b3bab65acf25f02b531c880c9dc31eab8c58409caf7cf60  trealla/tpl.wasm" | sha256sum -c -
