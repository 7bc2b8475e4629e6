#!/usr/bin/env bash
# Edge: cross-builds the runtime-only `kettle` (wasmtime without Cranelift) for
# aarch64-unknown-linux-gnu with Debian's cross toolchain, precompiles the hello agent for
# aarch64 with this machine's full `kettle`, and runs it on the aarch64 binary under qemu-user:
# its final state must be the one the full `kettle` gives here. Then checks that the
# runtime-only binary refuses an agent whose components were not precompiled, saying how.
# Installs what it needs from Debian (apt-get) and the Rust target (rustup) when missing.
# KETTLE_EDGE_PROFILE=dev builds without optimisation (what CI does: the check is that it runs,
# not how small it is; a cold release build of wasmtime for aarch64 costs ~20 more minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kettle-target}"
# Its own folder: the runtime-only features would otherwise rebuild the host's wasmtime.
EDGE_TARGET_DIR="${KETTLE_EDGE_TARGET_DIR:-$CARGO_TARGET_DIR/edge-aarch64}"

need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The standard library of the toolchain in use (rust-toolchain pins it where present).
rustup target add "$TARGET"

profile="${KETTLE_EDGE_PROFILE:-release}"
case "$profile" in
  release) profile_dir=release ;;
  dev) profile_dir=debug ;;
  *) echo "edge: KETTLE_EDGE_PROFILE is release or dev, not $profile" >&2; exit 2 ;;
esac
started=$(date +%s)
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  CARGO_TARGET_DIR="$EDGE_TARGET_DIR" \
  cargo build --profile "$profile" --locked -p kettle-cli --no-default-features --features runtime-only \
  --target "$TARGET"
echo "edge: runtime-only kettle ($profile) for $TARGET built in $(( $(date +%s) - started )) s"
edge_kettle="$EDGE_TARGET_DIR/$TARGET/$profile_dir/kettle"
cargo build --locked -p kettle-cli
host_kettle="$CARGO_TARGET_DIR/debug/kettle"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export KETTLE_CACHE_DIR="$work/cache"
input='{"topic": "tea kettles"}'
# The device gets the agent's folder (its node folder is checked to exist, never built) with
# the precompiled components in their default place beside the agent file.
mkdir -p "$work/device/hello"
cp -r examples/hello/agent.yaml examples/hello/nodes "$work/device/hello/"
"$host_kettle" build --precompile examples/hello/agent.yaml --target "$TARGET" \
  --out "$work/device/hello/.kettle/precompiled/agent/$TARGET"
"$host_kettle" run examples/hello/agent.yaml --input "$input" --no-trace --quiet > "$work/expected.json"

export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
# qemu-user keeps a map of the guest's whole address space, and Kettle's instance pool reserves
# terabytes of it up front (1,000 slots of 4 GiB memories): under qemu that alone exhausts the
# host's memory. With 32 GiB of address space the reservation fails, and Kettle falls back to
# allocating instances on demand (saying so), as it does on a device whose kernel gives
# processes a small address space.
on_device() {
  (ulimit -v 33554432 && KETTLE_CACHE_DIR="$work/device/cache" qemu-aarch64 "$edge_kettle" "$@")
}
on_device --version
on_device run "$work/device/hello/agent.yaml" --input "$input" \
  --trace-dir "$work/device/traces" > "$work/device.json"
if ! cmp -s "$work/expected.json" "$work/device.json"; then
  echo "edge: the aarch64 run's state differs from the host's:" >&2
  diff "$work/expected.json" "$work/device.json" >&2 || true
  exit 1
fi
spans=$(cat "$work"/device/traces/*.jsonl | wc -l)
if [ "$spans" -ne 6 ]; then
  echo "edge: expected one trace of 6 spans on aarch64, found $spans lines" >&2
  exit 1
fi
if [ -e "$work/device/cache/components" ]; then
  echo "edge: the runtime-only kettle compiled or cached something" >&2
  exit 1
fi

# Without its precompiled components the agent is refused, naming the node and the command.
rm -rf "$work/device/hello/.kettle"
if on_device run "$work/device/hello/agent.yaml" --input "$input" --no-trace 2> "$work/refusal.txt"; then
  echo "edge: the runtime-only kettle ran an agent that was not precompiled" >&2
  exit 1
fi
grep -q "node \`summarize\`: its component (folder:nodes/summarize) is not precompiled" "$work/refusal.txt"
grep -q "kettle build --precompile .* --target $TARGET" "$work/refusal.txt" || {
  cat "$work/refusal.txt" >&2
  exit 1
}
echo "edge: hello ran on the runtime-only kettle for $TARGET under qemu-user; the same state as here"
