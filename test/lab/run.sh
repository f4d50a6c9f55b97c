#!/usr/bin/env bash
# Boot a real Xen host under QEMU (software emulation) and run one scenario in its dom0.
#
#   test/lab/run.sh [--timeout SECONDS] [--memory MIB] SCENARIO [ARGS...]
#
# SCENARIO is a bash script (path relative to the checkout or absolute) run in dom0 with the
# checkout as working directory, after xenstored, xen-init-dom0 and xenconsoled are up; it can
# source test/lab/dom0-lib.sh for guest helpers. Dom0's root is this machine's root, read-only,
# so node, the checkout and the Xen tools are all there; build/lab/results is dom0's /run/lab.
#
# LAB_* variables of the caller are passed on to the scenario. Results (always, also on failure):
# build/lab/results/
#   console.log      Xen + dom0 serial console     scenario.log, scenario.status
#   guests/*.log     guest consoles (xenconsoled)  dom0/*                toolstack logs
#   marks, timings.txt                             input/                what was run
# Exit status: 0 the scenario passed, 1 it failed, 2 the lab itself failed (boot, toolstack,
# timeout) and the scenario did not run to its end.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

timeout_s=${LAB_TIMEOUT:-900}
memory_mib=2048
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout_s=$2; shift 2 ;;
    --memory) memory_mib=$2; shift 2 ;;
    --) shift; break ;;
    -*) lab_die "unknown option $1 (usage: run.sh [--timeout S] [--memory MIB] SCENARIO [ARGS...])" ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || lab_die "usage: run.sh [--timeout S] [--memory MIB] SCENARIO [ARGS...]"
scenario=$1; shift
case "$scenario" in /*) ;; *) scenario=$LAB_ROOT/$scenario ;; esac
[ -f "$scenario" ] || lab_die "no scenario $scenario"

# Dom0 mounts tmpfs over /run and /var, and QEMU's -initrd list is comma-separated.
case "$LAB_ROOT" in
  /run/* | /var/*) lab_die "the checkout ($LAB_ROOT) must not live under /run or /var: dom0 mounts tmpfs there" ;;
  *,* | *' '*) lab_die "the checkout path ($LAB_ROOT) must not contain commas or spaces (QEMU's module list)" ;;
esac
lab_need_cmd qemu-system-x86_64 timeout flock
mkdir -p "$LAB_BUILD"
# One run at a time per checkout: results/ is the running dom0's share.
exec 9>"$LAB_BUILD/run.lock"
flock -n 9 || lab_die "another lab run is using $LAB_BUILD (lock $LAB_BUILD/run.lock)"
t_start=$(lab_now)

# Images first: outside the QEMU timeout, under their own.
t_img=$(lab_now)
timeout 600 "$LAB_SRC/build-images.sh" || lab_die "building the lab images failed"
img_s=$(lab_since "$t_img")

# Fresh results directory = dom0's read-write share.
rm -rf "$LAB_RESULTS"
mkdir -p "$LAB_RESULTS"/{input,guests,dom0}
{
  echo "LAB_ROOT=$LAB_ROOT"
  echo "LAB_IMG=$LAB_IMG"
  echo "LAB_XEN_VERSION=$LAB_XEN_VERSION"
  echo "LAB_SCENARIO=$scenario"
  # The scenario must end well before QEMU is killed, so leftovers get flushed.
  echo "LAB_SCENARIO_TIMEOUT=$((timeout_s > 180 ? timeout_s - 90 : timeout_s / 2))"
  # Other LAB_* variables of the caller reach the scenario (e.g. LAB_GUEST_CMDLINE).
  for v in $(compgen -e | grep '^LAB_' || true); do
    case "$v" in LAB_ROOT | LAB_IMG | LAB_XEN_VERSION | LAB_SCENARIO | LAB_SCENARIO_TIMEOUT) continue ;; esac
    printf '%s=%q\n' "$v" "${!v}"
  done
} >"$LAB_RESULTS/input/env"
printf 'LAB_ARGS=(' >"$LAB_RESULTS/input/args.sh"
for a in "$@"; do printf '%q ' "$a" >>"$LAB_RESULTS/input/args.sh"; done
printf ')\n' >>"$LAB_RESULTS/input/args.sh"
cp "$LAB_SRC/dom0-run.sh" "$LAB_RESULTS/input/run.sh"
cp "$scenario" "$LAB_RESULTS/input/"

# XPTI (flushes the TLB on every PV guest kernel entry) and PV L1TF shadowing cost a lot under
# emulation and protect nothing in a throwaway test host. Not `spec-ctrl=no`: it also drops the
# GDS mitigation, which is what hides AVX from the guests, and with AVX visible glibc's AVX2
# routines on QEMU 7.2's emulation crashed dom0 processes at random (date, xl: segfaults and
# heap corruption in libc). dom0-run.sh refuses to start when AVX is visible.
xen_args="console=com1 com1=115200,8n1 dom0_mem=512M,max:512M loglvl=all guest_loglvl=all"
xen_args+=" ${LAB_XEN_TUNING-xpti=no pv-l1tf=no}"
dom0_args="console=hvc0 earlyprintk=xen ${LAB_KERNEL_TUNING-mitigations=off}"
lab_log "booting Xen under QEMU (timeout ${timeout_s} s); console: $LAB_RESULTS/console.log"
t_boot=$(lab_now)
set +e
# KVM cannot run this Xen (emulation failure on a CET instruction) and `-cpu max` crashes dom0:
# software emulation with a Haswell model is what boots (see docs/lab.md).
timeout -k 15 "$timeout_s" qemu-system-x86_64 \
  -accel tcg -cpu Haswell-noTSX -m "$memory_mib" -smp 2 \
  -display none -serial stdio -monitor none -no-reboot \
  -kernel "$LAB_IMG/xen" -append "$xen_args" \
  -initrd "$LAB_IMG/vmlinuz $dom0_args,$LAB_IMG/dom0-initrd.gz" \
  -fsdev local,id=fsroot,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=fsroot,mount_tag=rootfs \
  -fsdev "local,id=fsshare,path=$LAB_RESULTS,security_model=none,multidevs=remap" \
  -device virtio-9p-pci,fsdev=fsshare,mount_tag=share \
  </dev/null >"$LAB_RESULTS/console.log" 2>&1
qemu_rc=$?
set -e
boot_total=$(lab_since "$t_boot")

# Timings: dom0 marks carry the guest-visible wall clock (from the emulated RTC) next to dom0's
# uptime; phases are reported relative to QEMU's start on this machine.
{
  echo "images_s $img_s"
  echo "qemu_total_s $boot_total"
  if [ -f "$LAB_RESULTS/marks" ]; then
    while read -r name _up wall; do
      awk -v n="$name" -v a="$t_boot" -v b="$wall" 'BEGIN { printf "%s_at_s %.1f\n", n, b - a }'
    done <"$LAB_RESULTS/marks"
  fi
  # What the scenario measured itself (guest create/boot/shutdown, balloon follow times).
  [ -f "$LAB_RESULTS/scenario-timings.txt" ] && sed 's/^/scenario_/' "$LAB_RESULTS/scenario-timings.txt"
} >"$LAB_RESULTS/timings.txt"

lab_log "timings: $(tr '\n' ' ' <"$LAB_RESULTS/timings.txt")"
qemu_killed=false
[ $qemu_rc -eq 124 ] || [ $qemu_rc -eq 137 ] && qemu_killed=true

# The scenario ran to its end: its status decides (a timeout inside dom0 is the scenario's).
if [ -f "$LAB_RESULTS/scenario.status" ]; then
  status=$(cat "$LAB_RESULTS/scenario.status")
  if [ "$status" != 0 ]; then
    lab_log "scenario output (last lines):"
    tail -n 30 "$LAB_RESULTS/scenario.log" | sed 's/^/  | /' >&2
    why="exited with $status"
    [ "$status" = 124 ] && why="timed out after $(sed -n 's/^LAB_SCENARIO_TIMEOUT=//p' "$LAB_RESULTS/input/env") s"
    lab_log "FAILED: scenario $(basename "$scenario") $why (results in $LAB_RESULTS)"
    exit 1
  fi
  if $qemu_killed; then
    lab_log "FAILED: the scenario passed but the machine did not power off within ${timeout_s} s (results in $LAB_RESULTS)"
    exit 2
  fi
  lab_log "scenario $(basename "$scenario") passed in $(lab_since "$t_start") s (results in $LAB_RESULTS)"
  exit 0
fi

# It did not: say where the lab broke.
if $qemu_killed; then
  fail_reason="QEMU did not finish within ${timeout_s} s (killed)"
elif grep -q '^LAB-FAIL:' "$LAB_RESULTS/console.log"; then
  fail_reason="dom0 init: $(grep -m1 '^LAB-FAIL:' "$LAB_RESULTS/console.log" | cut -d' ' -f2-)"
elif [ -f "$LAB_RESULTS/dom0/toolstack-failure" ]; then
  fail_reason=$(cat "$LAB_RESULTS/dom0/toolstack-failure")
elif [ $qemu_rc -ne 0 ]; then
  fail_reason="QEMU exited with status $qemu_rc: $(grep -v '^\s*$' "$LAB_RESULTS/console.log" | tail -n 3 | tr '\n' ' ')"
else
  fail_reason="the machine stopped before the scenario finished"
fi
lab_log "last console lines:"
tail -n 25 "$LAB_RESULTS/console.log" | sed 's/^/  | /' >&2
if [ -s "$LAB_RESULTS/scenario.log" ]; then
  lab_log "scenario output so far (last lines):"
  tail -n 15 "$LAB_RESULTS/scenario.log" | sed 's/^/  | /' >&2
fi
lab_log "FAILED: the lab did not run the scenario to its end: $fail_reason (results in $LAB_RESULTS)"
exit 2
