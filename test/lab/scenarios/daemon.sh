#!/bin/bash
# `make lab-test`: the real xenballoond on a real Xen host (docs/lab.md).
#
# xenballoond runs in dom0 with the lab policy (test/lab/policy.yaml) through the real
# xenstored, libxenstore and libxenctrl. PV guests (memory 128M, maxmem 256M) are launched one
# after another with `xenballoonctl launch --reserve`, each running xenballoon-report, until more
# run than a static allocation of their maxmem would allow. Checks, each failing loudly:
#   - every guest is managed: the daemon's status shows it with a need and a target;
#   - the binding's physinfo and per-domain memory equal `xl info`/`xl list`, and the daemon's
#     own view equals the binding's;
#   - more guests run, healthy, than the host's free memory holds at maxmem each;
#   - g1's eatmem allocates a fixed 96 MiB chunk, writes it at 8 MiB/s and holds it: within a
#     few intervals of g1's report showing the chunk committed, the daemon writes a target that
#     backs it (committed_as + the kernel's own footprint; timed on xenstore watches by the
#     sampler); its memory follows (no swap: otherwise the OOM killer strikes), and both come
#     back down once eatmem frees the chunk (the other guests run a smaller random eatmem
#     meanwhile);
#   - the daemon survives a guest being destroyed mid-run: it keeps stepping, with no failed
#     step, and keeps managing the others;
#   - no guest console shows an OOM kill, the daemon logged no error, and it stops cleanly on
#     SIGTERM.
# A sampler (timeline.mjs, one long-lived node process) records the daemon's status every second
# into timeline.csv and host.csv, logs every report/target/chunk change to events.csv, and runs
# the binding and reaction checks; the host side draws chart.svg.
#
# Polling here uses bash builtins only (the sampler's state files, read with `read`): each
# process started in this dom0 costs a lot, and would compete with the daemon under test.
set -euo pipefail
. "$LAB_ROOT/test/lab/dom0-lib.sh"

SOCK=/run/xenballoond/control.sock
# What runs: the esbuild bundles that `make deb` ships (LAB_DAEMON/LAB_CTL name others, e.g.
# LAB_DAEMON=dist/cli/xenballoond.js for tsc's output, ~300 files).
DAEMON_JS=${LAB_DAEMON:-build/bundle/xenballoond.mjs}
CTL_JS=${LAB_CTL:-build/bundle/xenballoonctl.mjs}
# The daemon runs with the capabilities the unit leaves it (CapabilityBoundingSet=CAP_IPC_LOCK,
# NoNewPrivileges=yes), through setpriv: dom0 here has no systemd. LAB_HARDEN=0: all of root's.
if [ "${LAB_HARDEN:-1}" = 1 ]; then HARDEN=(setpriv --bounding-set=-all,+ipc_lock --inh-caps=-all --no-new-privs); else HARDEN=(); fi
STATE=/run/lab-state
POLICY=$LAB_ROOT/test/lab/policy.yaml
GUEST_MEM=128
GUEST_MAXMEM=256
EAT_MIB=${LAB_EAT_MIB:-96}        # g1's fixed chunk
EAT_RATE=${LAB_EAT_RATE:-8M}      # how fast g1 writes it (per second)
EAT_HOLD_S=${LAB_EAT_HOLD_S:-10}  # how long g1 holds it
# The other guests' random chunks: unpaced, within the cushion the policy keeps free in them.
BG_EAT_MAX=${LAB_BG_EAT_MAX:-24M}
INTERVAL_MS=1000                        # the policy's interval
# "Within a few intervals": a report of more committed memory is taken at the next regular step,
# so the target must come within REACT_STEPS of the daemon's steps (counted on its status), and,
# since a loaded emulated machine stretches steps to seconds, within REACT_CAP_INTERVALS of wall
# clock (docs/lab.md says why these numbers).
REACT_STEPS=${LAB_REACT_STEPS:-3}
REACT_CAP_INTERVALS=${LAB_REACT_CAP_INTERVALS:-20}
GIVE_BACK_LIMIT_S=${LAB_GIVE_BACK_LIMIT_S:-30}
# The guests' kernel lets a program ask for more than the guest holds (a 96 MiB chunk in a guest
# of ~120 MiB, whose kernel keeps ~49 MiB): the memory must then arrive before it is written.
GUEST_ARGS="sysctl.vm.overcommit_memory=1"
MiB=1024
OOM_RE='Out of memory|oom-kill|Killed process'

# --- The sampler's state (timeline.mjs). st NAME loads NAME's line of STATE/domains into S:
# S[0] name, 1 domid, 2 managed, 3 current_kib, 4 target_kib, 5 need_kib, 6 maxmem_kib,
# 7 chunk_kib, 8 report_age_ms, 9 flags ('-' = none). False when NAME is not there.
S=()
st() {
  local f
  S=()
  [ -r "$STATE/domains" ] || return 1
  while read -ra f; do
    if [ "${f[0]:-}" = "$1" ]; then
      S=("${f[@]}")
      return 0
    fi
  done <"$STATE/domains"
  return 1
}
# D_STATE (up|down) D_PID D_STEPS D_FAILURES D_STALLED D_TIME from STATE/daemon.
daemon_state() {
  D_STATE=down D_STEPS=0 D_FAILURES=0
  [ -r "$STATE/daemon" ] && read -r D_STATE D_PID D_STEPS D_FAILURES D_STALLED D_TIME <"$STATE/daemon"
  [ "$D_STATE" = up ]
}
num() { [[ $1 =~ ^[0-9]+$ ]]; }

# Conditions for until_ok: each re-reads the state.
managed() { st "$1" && [ "${S[2]}" = 1 ] && num "${S[4]}" && num "${S[5]}"; }
# Managed, with a fresh report (younger than the policy's stale_after).
healthy() { managed "$1" && num "${S[8]}" && [ "${S[8]}" -lt 30000 ]; }
# |memory - target| < $2 KiB.
near_target() { st "$1" && num "${S[3]}" && num "${S[4]}" && [ $((S[3] - S[4])) -lt "$2" ] && [ $((S[4] - S[3])) -lt "$2" ]; }
target_at_least() { st "$1" && num "${S[4]}" && [ "${S[4]}" -ge "$2" ]; }
memory_at_least() { st "$1" && num "${S[3]}" && [ "${S[3]}" -ge "$2" ]; }
chunk_held() { st "$1" && num "${S[7]}" && [ "${S[7]}" -gt 0 ]; }
chunk_freed() { st "$1" && [ "${S[7]}" = 0 ]; }
came_back() { st "$1" && [ "${S[4]}" -le "$2" ] && [ "${S[3]}" -le "$3" ]; }
gone() { ! st "$1"; }
steps_at_least() { daemon_state && [ "$D_STEPS" -ge "$1" ]; }
daemon_up() { daemon_state; }

daemon_alive() { [ -n "${DAEMON_PID:-}" ] && kill -0 "$DAEMON_PID" 2>/dev/null; }
daemon_died() {
  echo "--- last lines of daemon.log:" >&2
  tail -n 20 "$LAB_RESULTS/daemon.log" >&2 || true
  lab_fail "xenballoond exited $*"
}

# until_ok LIMIT WHAT CMD...: poll CMD (a function above) every 0.5 s; fail at once if the daemon
# died, and with the sampler's view of the domains when the limit passes.
until_ok() {
  local limit=$1 what=$2 end view
  shift 2
  end=$((EPOCHSECONDS + limit))
  until "$@"; do
    daemon_alive || daemon_died "while waiting for $what"
    if [ "$EPOCHSECONDS" -ge "$end" ]; then
      view=$(<"$STATE/domains") || true
      lab_fail "timed out after ${limit} s waiting for $what (the daemon's view: ${view//$'\n'/ | })"
    fi
    lab_sleep 0.5
  done
}

# sampler_check ID STEP...: have the sampler run xenctrl-check.mjs steps (it is already running:
# no node start); prints the check's lines, fails on a mismatch.
sampler_check() {
  local id=$1 verdict line
  shift
  printf '%s %s\n' "$id" "$*" >"$STATE/.request.tmp"
  mv "$STATE/.request.tmp" "$STATE/request"
  result_ready() { [ -s "$STATE/result-$id" ]; }
  until_ok 300 "the sampler's check $id ($*)" result_ready
  while IFS= read -r line; do echo "  $line"; done <"$STATE/result-$id"
  read -r verdict <"$STATE/result-$id"
  [ "$verdict" = ok ]
}

cleanup() {
  local rc=$?
  [ -n "${XENTOP_PID:-}" ] && kill "$XENTOP_PID" 2>/dev/null
  [ -n "${SAMPLER_PID:-}" ] && kill "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null
  cp "$STATE/status.json" "$LAB_RESULTS/status-end.json" 2>/dev/null || true
  if daemon_alive; then
    kill "$DAEMON_PID" 2>/dev/null
    timeout 60 tail --pid="$DAEMON_PID" -f /dev/null || kill -9 "$DAEMON_PID" 2>/dev/null
  fi
  exit $rc
}
trap cleanup EXIT

# --- The host before any guest: what a static allocation of maxmem would hold.
free_mib=$(xl info | awk '$1 == "free_memory" { print $3 }')
num "$free_mib" || lab_fail "xl info shows no free_memory"
static=$((free_mib / GUEST_MAXMEM))
count=${LAB_GUESTS:-$((static + 1))}
lab_say "host: ${free_mib} MiB free before any guest; at maxmem ${GUEST_MAXMEM} MiB each a static allocation holds ${static} guests; launching ${count}"
[ "$count" -gt "$static" ] || lab_fail "LAB_GUESTS=$count does not exceed the static ${static}"

# --- xenballoond, then the sampler (started once the daemon is up, so that the daemon's start is
# measured alone: a second cold node beside it doubled it); xentop records each domain's CPU time
# every 10 s.
mkdir -p "${SOCK%/*}" "$STATE"
xentop -b -d 10 >"$LAB_RESULTS/xentop.log" 2>&1 </dev/null &
XENTOP_PID=$!
# Loading the program alone (--version: every module, no Xen call), cold, tsc's dist/ against the
# bundle; node itself is warmed first and timed warm, so that only the program's own files count.
node -e 0
t=$(lab_now); node -e 0; lab_timing node_warm_s "$(lab_since "$t")"
t=$(lab_now); node dist/cli/xenballoond.js --version >/dev/null; lab_timing load_dist_s "$(lab_since "$t")"
t=$(lab_now); node build/bundle/xenballoond.mjs --version >/dev/null; lab_timing load_bundle_s "$(lab_since "$t")"
timing() { awk -v k="$1" '$1 == k { print $2 }' "$LAB_RESULTS/scenario-timings.txt"; }
lab_say "node -e 0 (warm) $(timing node_warm_s) s; loading the program cold: dist/ $(timing load_dist_s) s, bundle $(timing load_bundle_s) s"

lab_say "starting xenballoond ($DAEMON_JS${HARDEN:+ under ${HARDEN[*]}}, --hypervisor xen, policy $POLICY)"
t0=$(lab_now)
"${HARDEN[@]}" node "$DAEMON_JS" --hypervisor xen --policy "$POLICY" --control "$SOCK" \
  >"$LAB_RESULTS/daemon.log" 2>&1 </dev/null &
DAEMON_PID=$!
# Process start to its first step done (the "xenballoond started" line, logged right before READY=1).
# (bash builtins only; the log exists once the background job has opened it)
daemon_started() { local log=''; [ -s "$LAB_RESULTS/daemon.log" ] && log=$(<"$LAB_RESULTS/daemon.log"); [[ $log == *'xenballoond started'* ]]; }
until_ok 300 "xenballoond's first step" daemon_started
started_ms=$(awk '/xenballoond started/ { if (match($0, /"time":[0-9]+/)) { print substr($0, RSTART + 7, RLENGTH - 7); exit } }' "$LAB_RESULTS/daemon.log")
d=$((started_ms - 10#${t0/./} / 1000))
lab_timing daemon_started_s "$((d / 1000)).$(printf '%03d' $((d % 1000)))"
lab_say "xenballoond's start (process start to its first step): $((d / 1000)).$(printf '%03d' $((d % 1000))) s"
node test/lab/scenarios/timeline.mjs --control "$SOCK" --csv "$LAB_RESULTS/timeline.csv" \
  --host-csv "$LAB_RESULTS/host.csv" --events-csv "$LAB_RESULTS/events.csv" --state "$STATE" >"$LAB_RESULTS/timeline.log" 2>&1 </dev/null &
SAMPLER_PID=$!
until_ok 300 "xenballoond to answer the sampler" daemon_up
lab_timing daemon_up "$(lab_since "$t0")"
lab_say "xenballoond up (pid $DAEMON_PID) and the sampler answering after $(lab_since "$t0") s"

# --- Guests, one after another, each through a reservation.
guests=()
for ((i = 1; i <= count; i++)); do
  name=g$i
  log=$LAB_RESULTS/guests/$name.create.log
  cfg=$(lab_guest_config "$name" "$GUEST_MEM" "$GUEST_MAXMEM" "$GUEST_ARGS")
  t0=$(lab_now)
  lab_say "xenballoonctl launch --reserve ${GUEST_MEM}M -- xl create $name.cfg"
  if ! timeout 300 node "$CTL_JS" --control "$SOCK" launch --reserve "${GUEST_MEM}M" \
    --timeout 120s --wait 120s -- xl create "$cfg" >"$log" 2>&1; then
    cat "$log" >&2
    daemon_alive || daemon_died "during the launch of $name"
    lab_fail "xenballoonctl launch of $name failed"
  fi
  lab_timing "launch_$name" "$(lab_since "$t0")"
  # "xenballoonctl: domain N holds its memory; …": the domid, without an xl process.
  said=$(<"$log")
  [[ $said =~ domain\ ([0-9]+)\ holds\ its\ memory ]] || lab_fail "launch of $name did not say which domain took the reservation: $said"
  mkdir -p /run/lab-domid
  echo "${BASH_REMATCH[1]}" >"/run/lab-domid/$name"
  guests+=("$name")
  lab_say "$name is domain ${BASH_REMATCH[1]}"
done

# A report in the daemon's status means the guest booted and its reporter runs.
t0=$(lab_now)
for g in "${guests[@]}"; do until_ok 300 "$g to be managed (a need and a target in the daemon's status)" managed "$g"; done
lab_timing all_managed "$(lab_since "$t0")"
for g in "${guests[@]}"; do
  st "$g"
  lab_say "managed: $g domid ${S[1]} memory $((S[3] / MiB)) target $((S[4] / MiB)) need $((S[5] / MiB)) MiB"
done

# --- The binding vs xl, the daemon vs the binding (run by the sampler), once the guests have
# reached the targets the daemon gave them (a comparison needs a host that stands still).
for g in "${guests[@]}"; do until_ok 120 "$g to reach its target" near_target "$g" 1024; done
lab_say "binding vs xl info / xl list, and xenballoond's view vs the binding"
sampler_check c1 compare "daemon:$SOCK" || lab_fail "the binding or the daemon disagrees with xl"

# --- More guests than a static allocation: all running, all managed with fresh reports.
# (Counted with awk: coreutils' wc dies of SIGILL in this dom0, see docs/lab.md.)
running=$(xl list | awk 'NR > 1 && $2 != 0 { n++ } END { print n + 0 }')
[ "$running" -eq "$count" ] || lab_fail "xl list shows $running guests, expected $count"
for g in "${guests[@]}"; do healthy "$g" || lab_fail "$g is not healthy: flags ${S[9]:-?}, report age ${S[8]:-?} ms"; done
lab_say "overcommit: $running guests run (maxmem $((running * GUEST_MAXMEM)) MiB in all) where a static allocation of ${free_mib} MiB holds $static"
lab_timing guests_running "$running"
lab_timing guests_static "$static"

# --- Workloads: a random eatmem in every guest but g1 (started in parallel: each is a round trip
# through the guest's xenstore channel); g1 gets the fixed chunk.
pids=()
for g in "${guests[@]:1}"; do
  lab_guest_start "$g" "eatmem --max $BG_EAT_MAX --sleep-min 2 --sleep-max 10 --seed ${g#g} --publish" &
  pids+=($!)
done
for i in "${!pids[@]}"; do wait "${pids[$i]}" || lab_fail "cannot start eatmem in ${guests[$((i + 1))]}"; done
lab_say "eatmem --max $BG_EAT_MAX running in ${guests[*]:1}"
until_ok 60 "g1's target to settle (within 8 MiB of its memory)" near_target g1 $((8 * MiB))
base_target=${S[4]}
base_current=${S[3]}
lab_say "g1 before: memory $((base_current / MiB)) target $((base_target / MiB)) need $((S[5] / MiB)) MiB"
sampler_check m1 mark:g1 || lab_fail "the sampler cannot take g1's baseline"
lab_guest_start g1 "eatmem --min ${EAT_MIB}M --max ${EAT_MIB}M --rate $EAT_RATE --hold $EAT_HOLD_S --rounds 1 --sleep-max 0 --seed 1 --publish" ||
  lab_fail "cannot start eatmem in g1"
t_start=$(lab_now)
# The daemon's reaction: from g1's report showing the chunk committed to a target that backs it
# (committed_as + the kernel's footprint), both timed by the sampler's xenstore watches.
reacted=0
sampler_check r1 "reaction:g1:$((EAT_MIB * MiB)):$REACT_STEPS:$((REACT_CAP_INTERVALS * INTERVAL_MS))" || reacted=$?
# The figures are recorded also when over the bound (none when the target never came).
if [ -r "$STATE/reaction-g1" ]; then
  read -r threshold react_ms react_steps chunk_to_report_ms <"$STATE/reaction-g1"
  lab_timing g1_reaction_ms "$react_ms"
  lab_timing g1_reaction_steps "$react_steps"
  lab_timing g1_chunk_to_report_ms "$chunk_to_report_ms"
fi
[ "$reacted" -eq 0 ] || lab_fail "g1's growth was not answered within $REACT_STEPS steps and $REACT_CAP_INTERVALS intervals"
until_ok 60 "g1 to hold the ${threshold} KiB that back its chunk" memory_at_least g1 "$threshold"
follow_s=$(lab_since "$t_start")
lab_say "g1 grew: the daemon answered its report in ${react_ms} ms (${react_steps} steps); memory $((S[3] / MiB)) MiB (target $((S[4] / MiB))) ${follow_s} s after eatmem started"
lab_timing g1_memory_up_s "$follow_s"

# --- While g1 writes and holds its chunk: destroy a guest under the daemon's feet.
victim=${guests[-1]}
lab_say "xl destroy $victim (domid $(lab_domid "$victim")) mid-run"
daemon_state
steps_before=$D_STEPS
failures_before=$D_FAILURES
timeout 120 xl destroy "$victim" || lab_fail "xl destroy $victim failed"
rm -f "/run/lab-domid/$victim"
unset 'guests[-1]'
until_ok 60 "$victim to leave the daemon's status" gone "$victim"
until_ok 60 "xenballoond to keep stepping after the destroy" steps_at_least $((steps_before + 5))
lab_say "xenballoond steps on: $D_STEPS steps, $D_FAILURES failed"
# Surviving is stepping on without errors: a domain vanishing between the hypervisor's list and
# a target write is an everyday event for a balloon daemon, not a failed step.
[ "$D_FAILURES" -eq "$failures_before" ] ||
  lab_fail "xenballoond's steps failed $((D_FAILURES - failures_before)) times around the destroy (daemon.log)"

# --- g1 frees its chunk: the memory goes back.
until_ok $((EAT_HOLD_S + EAT_MIB / 2 + 120)) "g1's eatmem to free its chunk" chunk_freed g1
t_free=$(lab_now)
until_ok 120 "g1's target and memory to come back within 16 MiB of before" \
  came_back g1 $((base_target + 16 * MiB)) $((base_current + 16 * MiB))
back_s=$(lab_since "$t_free")
lab_say "g1 gave it back: memory $((S[3] / MiB)) target $((S[4] / MiB)) MiB ${back_s} s after the chunk was freed"
lab_timing g1_given_back_s "$back_s"
[ "${back_s%.*}" -lt "$GIVE_BACK_LIMIT_S" ] ||
  lab_fail "g1 gave its memory back ${back_s} s after eatmem freed it: not within ${GIVE_BACK_LIMIT_S} s"

# --- The end: still managing everyone, no OOM anywhere, a clean stop.
for g in "${guests[@]}"; do
  until_ok 60 "$g to be healthy" healthy "$g"
  ! lab_console_has "$g" "$OOM_RE" || lab_fail "$g's console shows an OOM kill"
done
! lab_console_has "$victim" "$OOM_RE" || lab_fail "$victim's console shows an OOM kill"
daemon_state
lab_say "end: ${guests[*]} managed; xenballoond: $D_STEPS steps, $D_FAILURES failed"
lab_timing daemon_step_failures "$D_FAILURES"
# Errors in the daemon's own log (pino level 50 error, 60 fatal) are failures even when it went on,
# except its "stalled" condition (no step completed for 5 intervals): the emulated machine as a
# whole slows down that much when the host is loaded (docs/lab.md); counted, not failed.
stalls=$(grep '"level":50' "$LAB_RESULTS/daemon.log" | grep -c '"condition":"stalled"' || true)
lab_timing daemon_stall_reports "${stalls:-0}"
if grep '"level":[56]0' "$LAB_RESULTS/daemon.log" | grep -qv '"condition":"stalled"'; then
  grep '"level":[56]0' "$LAB_RESULTS/daemon.log" | grep -v '"condition":"stalled"' | tail -n 5 >&2
  lab_fail "xenballoond logged errors (above, daemon.log)"
fi

kill "$SAMPLER_PID" && wait "$SAMPLER_PID" || true
SAMPLER_PID=
cp "$STATE/status.json" "$LAB_RESULTS/status-end.json"
kill "$DAEMON_PID"
stopped() { ! kill -0 "$DAEMON_PID" 2>/dev/null; }
lab_wait_for 60 "xenballoond to stop on SIGTERM" stopped || lab_fail "xenballoond did not stop within 60 s of SIGTERM"
rc=0
wait "$DAEMON_PID" || rc=$?
DAEMON_PID=
[ "$rc" -eq 0 ] || lab_fail "xenballoond exited with $rc on SIGTERM"
lab_say "xenballoond stopped cleanly; lab-test passed"
