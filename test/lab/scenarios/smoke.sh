#!/bin/bash
# `make lab-smoke`: the real Xen host works end to end with our libxenctrl binding.
# Two PV guests (128 MiB, maxmem 256 MiB); the binding's physinfo and per-domain memory and
# flags agree with `xl info`/`xl list`; guests follow `xl mem-set` and our own path
# (setMaxmem + memory/target), and maxmem caps them; the guest reporter publishes and eatmem
# runs, if the guest initrd carries them; both guests shut down cleanly and no console shows an
# OOM kill.
set -euo pipefail
. "$LAB_ROOT/test/lab/dom0-lib.sh"
# One node process per batch of steps: node takes seconds to start in an emulated dom0.
check() { node test/lab/scenarios/xenctrl-check.mjs "$@"; }
GUESTS="smoke1 smoke2"

# smoke2 starts its reporter through the kernel command line (lab_boot), smoke1 by default.
lab_say "creating smoke1"
lab_guest_create smoke1 128 256
lab_say "creating smoke2"
lab_guest_create smoke2 128 256 lab_boot=xenballoon-report,--interval,2
lab_say "binding vs xl while the guests boot, then ballooning"
check compare
for g in $GUESTS; do lab_guest_wait_ready "$g"; done
lab_say "guests up: $(xl list | awk 'NR > 1 { printf "%s=%sMiB ", $1, $3 }')"

# xl mem-set: libxl writes the target, then maxmem = target + 1 MiB.
# balloon: our path, growing smoke1 above its 101 MiB cap and shrinking smoke2.
check compare \
  xl-mem-set:smoke1:100 maxmem:smoke1:$((100 * 1024 + 1024)) compare \
  balloon:smoke1:200 balloon:smoke2:96 compare \
  capped:smoke2:160 \
  pause:smoke2 compare unpause:smoke2

seen=$(lab_guest_run smoke1 120 'cat /sys/devices/system/xen_memory/xen_memory0/info/current_kb')
[ "$seen" = 204800 ] || lab_fail "smoke1's balloon driver reports '${seen}' KiB, expected 204800"
lab_say "smoke1's balloon driver: current_kb $seen"

if lab_guest_run smoke1 120 'command -v xenballoon-report' >/dev/null; then
  for g in $GUESTS; do
    id=$(lab_domid "$g")
    lab_wait_for 120 "$g's report at data/xenballoon/report" xenstore-read "/local/domain/$id/data/xenballoon/report"
    report=$(xenstore-read -R "/local/domain/$id/data/xenballoon/report")
    lab_say "$g report (${#report} bytes): $(echo "$report" | head -c 300 | tr '\n' ' ')"
  done
else
  lab_say "no xenballoon-report in the guest initrd (build/bin empty): reporter check skipped"
  # The guest-side xenstore client still works: the guest writes its own data/ key.
  id=$(lab_domid smoke1)
  lab_guest_run smoke1 120 'xenstore-write data/lab/probe "hello from $(xenstore-read domid)"' >/dev/null
  probe=$(xenstore-read "/local/domain/$id/data/lab/probe")
  [ "$probe" = "hello from $id" ] || lab_fail "guest probe read back as '$probe'"
  lab_say "guest-written data/lab/probe: $probe"
fi

if lab_guest_run smoke1 120 'command -v eatmem' >/dev/null; then
  lab_say "eatmem in smoke1's background (lab_guest_start), publishing its chunk"
  id=$(lab_domid smoke1)
  lab_guest_start smoke1 'eatmem --max 32M --rounds 3 --sleep-max 1 --seed 7 --publish'
  lab_wait_for 120 "smoke1's eatmem to publish data/eatmem/chunk" xenstore-read "/local/domain/$id/data/eatmem/chunk"
  lab_say "smoke1 data/eatmem/chunk: $(xenstore-read "/local/domain/$id/data/eatmem/chunk") KiB"
fi

for g in $GUESTS; do lab_guest_shutdown "$g"; done
check compare
for g in $GUESTS; do
  ! lab_console_has "$g" 'Out of memory|oom-kill|Killed process' || lab_fail "$g's console shows an OOM kill"
done
lab_say "smoke passed"
