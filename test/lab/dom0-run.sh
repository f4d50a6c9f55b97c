#!/bin/bash
# Runs inside dom0 (chroot into this machine's root, read-only over 9p), copied by run.sh into
# the share as input/run.sh. Starts the Xen toolstack (xenstored, xen-init-dom0, xenconsoled),
# runs the scenario under a timeout, records its output and exit status in the share, destroys
# leftover guests so their consoles are flushed, and returns. The dom0 init powers off after.
set -u
. /run/lab/input/env
. /run/lab/input/args.sh
export LAB_ROOT LAB_IMG LAB_RESULTS=/run/lab
for v in $(compgen -v | grep '^LAB_'); do export "$v"; done
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/run/home TMPDIR=/run/tmp
XEN_BIN=/usr/lib/xen-$LAB_XEN_VERSION/bin

mark() { echo "$1 $(cut -d' ' -f1 /proc/uptime) $EPOCHREALTIME" >>/run/lab/marks; }
log() { echo "run.sh: $*"; }
# A toolstack step that fails ends the run: the scenario never starts (status file says why).
die() {
  log "FAILED: $*"
  echo "toolstack: $*" >/run/lab/dom0/toolstack-failure
  exit 3
}
# wait_for SECONDS WHAT CMD...: poll CMD until it succeeds.
wait_for() {
  local limit=$1 what=$2 end
  shift 2
  end=$((EPOCHSECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$EPOCHSECONDS" -lt "$end" ] || return 1
    sleep 0.2
  done
}

mkdir -p /var/lib/xen /var/log/xen /var/lib/xenstored /run/xen /run/xenstored /run/lock \
  "$HOME" "$TMPDIR" /run/lab/guests /run/lab/dom0
ln -sfn /run /var/run
ln -sfn /run/lock /var/lock
# devtmpfs has no /dev/fd (udev makes it elsewhere): bash's process substitution needs it.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
# QEMU 7.2's emulated AVX2 crashed libc string routines in dom0 at random (see run.sh).
if grep -qw avx /proc/cpuinfo && [ "${LAB_ALLOW_AVX:-}" != 1 ]; then
  die "AVX is visible to dom0: under QEMU 7.2's emulation glibc's AVX2 routines crash processes at random; keep Xen's GDS mitigation on (no spec-ctrl=no) or set LAB_ALLOW_AVX=1"
fi
grep -q ' /proc/xen ' /proc/mounts || mount -t xenfs xenfs /proc/xen || die "mount xenfs on /proc/xen"

log "starting xenstored"
XENSTORED_ROOTDIR=/var/lib/xenstored "$XEN_BIN/xenstored" --pid-file /run/xenstored.pid \
  >/run/lab/dom0/xenstored.log 2>&1 || die "xenstored did not start (dom0/xenstored.log)"
wait_for 60 "xenstored" xenstore-read -s / || die "xenstored does not answer after 60 s"
mark xenstored-up
timeout 60 "$XEN_BIN/xen-init-dom0" >/run/lab/dom0/xen-init-dom0.log 2>&1 ||
  die "xen-init-dom0 failed (dom0/xen-init-dom0.log)"
"$XEN_BIN/xenconsoled" --log=guest --log-dir=/run/lab/guests --timestamp=guest \
  --pid-file=/run/xenconsoled.pid >/run/lab/dom0/xenconsoled.log 2>&1 ||
  die "xenconsoled did not start (dom0/xenconsoled.log)"
wait_for 30 "xenconsoled" test -s /run/xenconsoled.pid || die "xenconsoled wrote no pid file"
timeout 60 xl info >/run/lab/dom0/xl-info.txt 2>&1 || die "xl info failed (dom0/xl-info.txt)"
# Dom0 carries xenstored, xl and whatever the scenario runs: under emulation, guests booting at
# credit2's default weight (256, as dom0) starved it, up to xenstored not answering for 10 s.
if grep -q '^xen_scheduler *: credit2' /run/lab/dom0/xl-info.txt; then
  timeout 30 xl sched-credit2 -d Domain-0 -w "${LAB_DOM0_WEIGHT:-1024}" >/run/lab/dom0/sched.log 2>&1 ||
    log "could not set dom0's scheduler weight (dom0/sched.log)"
fi
mark toolstack-up
log "toolstack up at $(cut -d' ' -f1 /proc/uptime) s"

log "scenario: $LAB_SCENARIO ${LAB_ARGS[*]} (timeout ${LAB_SCENARIO_TIMEOUT} s)"
mark scenario-start
cd "$LAB_ROOT" || die "checkout $LAB_ROOT not visible in dom0"
timeout -k 10 "$LAB_SCENARIO_TIMEOUT" bash "$LAB_SCENARIO" "${LAB_ARGS[@]}" \
  >/run/lab/scenario.log 2>&1 </dev/null
status=$?
[ $status -eq 124 ] && echo "scenario: timed out after $LAB_SCENARIO_TIMEOUT s" >>/run/lab/scenario.log
echo $status >/run/lab/scenario.status
mark scenario-end
log "scenario exited with $status"

# Leftover guests: destroy them so xenconsoled flushes and closes their logs.
for d in $(timeout 30 xl list 2>/dev/null | awk 'NR > 1 && $2 != 0 { print $1 }'); do
  timeout 30 xl destroy "$d" >/dev/null 2>&1 || log "xl destroy $d failed"
done
timeout 20 xl list >/run/lab/dom0/xl-list-end.txt 2>&1
# xl's own logs (one per domain from the `xl create` monitor) live on dom0's tmpfs /var.
mkdir -p /run/lab/dom0/xen-logs && cp -r /var/log/xen/. /run/lab/dom0/xen-logs/ 2>/dev/null
[ -s /run/xenconsoled.pid ] && kill "$(cat /run/xenconsoled.pid)" 2>/dev/null
sleep 0.5
mark end
exit 0
