#!/usr/bin/env bash
# A benchmark, not a test (make bench-start): xenballoond's start on this machine, from process
# start to its first step done (the "xenballoond started" line, logged right before READY=1),
# against a simulated host (paper-idle-2g, its guests launched), for tsc's dist/ (~300 module
# files) and the esbuild bundle that ships. Each is run RUNS times (default 5) after one warm-up;
# prints every run and the median. Asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
dir=$(mktemp -d /tmp/xbd-bench-start-XXXXXX)
node dist/cli/xenballoonctl.js sim-host --scenario paper-idle-2g --dir "$dir" --forever --log-level warn >"$dir/host.log" 2>&1 &
host=$!
trap 'kill $host 2>/dev/null; wait $host 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$dir/hypervisor.sock" ] && [ -S "$dir/xenstored.sock" ] && break; sleep 0.1; done

# start_ms FILE: ms from spawn to the daemon's "xenballoond started" line.
start_ms() {
  local js=$1 log=$dir/daemon.log t0 line
  : >"$log"
  t0=$(date +%s%3N)
  node "$js" --xenstore "$dir/xenstored.sock" --hypervisor "sim:$dir/hypervisor.sock" --control "$dir/control.sock" \
    --log-format json >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do
    line=$(grep -m1 'xenballoond started' "$log" || true)
    [ -n "$line" ] && break
    sleep 0.05
  done
  kill $pid; wait $pid 2>/dev/null || true
  [ -n "$line" ] || { echo "bench-start: $js did not start; its log:" >&2; cat "$log" >&2; exit 1; }
  echo $(( $(sed -E 's/.*"time":([0-9]+).*/\1/' <<<"$line") - t0 ))
}

for js in dist/cli/xenballoond.js build/bundle/xenballoond.mjs; do
  start_ms "$js" >/dev/null   # warm-up: the page cache, node itself
  all=()
  for _ in $(seq "$runs"); do all+=("$(start_ms "$js")"); done
  median=$(printf '%s\n' "${all[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%-32s median %5d ms   runs: %s\n' "$js" "$median" "${all[*]}"
done
