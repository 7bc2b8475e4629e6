#!/usr/bin/env bash
# Kettle workers on NATS JetStream: runs per second with 1, 2 and 4 workers, and the cost per
# run of the queue and the checkpoints against `kettle serve` alone. One command:
#   bench/scale/run.sh [--runs N] [--concurrency N]
# Needs nats-server (Debian: apt-get install nats-server); builds Kettle (release); writes the
# "scale" section of bench/RESULTS.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
  echo "bench/scale needs nats-server: apt-get install nats-server" >&2
  exit 2
fi
(cd "$repo" && cargo build --release -p kettle-cli --quiet)
target="${CARGO_TARGET_DIR:-$repo/target}"
exec python3 "$here/scale.py" --kettle "$target/release/kettle" --command "bench/scale/run.sh${*:+ $*}" "$@"
