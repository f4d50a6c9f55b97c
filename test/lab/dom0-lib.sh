# Helpers for lab scenarios, which run in dom0 (bash, working directory = the checkout). Source
# with `. "$LAB_ROOT/test/lab/dom0-lib.sh"`. Guests are PV, no disk, no network, booting the
# lab's uncompressed vmlinux and busybox initrd (see initrd/guest-init for the command channel).
#
# Every wait has a limit; a helper that fails prints why on stderr and returns non-zero, so a
# scenario under `set -e` stops at the first broken step.

LAB_RESULTS=${LAB_RESULTS:-/run/lab}

lab_say() { echo "[$(lab_clock)] $*"; }
lab_fail() {
  echo "[$(lab_clock)] FAIL: $*" >&2
  exit 1
}
# Seconds since dom0 booted, for scenario logs.
lab_clock() { cut -d' ' -f1 /proc/uptime; }
lab_now() { echo "$EPOCHREALTIME"; }
lab_since() { awk -v a="$1" -v b="$(lab_now)" 'BEGIN { printf "%.1f", b - a }'; }
# A timing the scenario measured: scenario-timings.txt, summarised by run.sh.
lab_timing() { echo "$1 $2" >>"$LAB_RESULTS/scenario-timings.txt"; }
lab_mark() { echo "$1 $(lab_clock) $(lab_now)" >>"$LAB_RESULTS/marks"; }

# lab_wait_for SECONDS WHAT CMD...: run CMD every 0.5 s until it succeeds.
lab_wait_for() {
  local limit=$1 what=$2 end
  shift 2
  end=$((EPOCHSECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ "$EPOCHSECONDS" -ge "$end" ]; then
      echo "timed out after ${limit} s waiting for $what" >&2
      return 1
    fi
    sleep 0.5
  done
}

# lab_guest_create NAME [MEMORY_MIB] [MAXMEM_MIB] [KEY=VALUE...]: create a PV guest from a config
# written to guests/NAME.cfg. KEY=VALUE pairs go to the guest kernel command line (e.g.
# lab_boot=eatmem,--rounds,3); the guest console is logged to guests/guest-NAME.log.
# LAB_GUEST_CMDLINE replaces the default kernel options (quiet: each console line costs dom0
# work under emulation; OOM kills are errors and still show).
lab_guest_create() {
  local name=$1 mem=${2:-128} maxmem=${3:-256} cfg t0
  shift $(($# < 3 ? $# : 3))
  cfg=$LAB_RESULTS/guests/$name.cfg
  cat >"$cfg" <<EOF
name = "$name"
type = "pv"
kernel = "$LAB_IMG/vmlinux"
ramdisk = "$LAB_IMG/guest-initrd.gz"
extra = "console=hvc0 ${LAB_GUEST_CMDLINE-quiet mitigations=off} $*"
memory = $mem
maxmem = $maxmem
vcpus = 1
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
EOF
  t0=$(lab_now)
  if ! timeout 180 xl create "$cfg" >"$LAB_RESULTS/guests/$name.create.log" 2>&1; then
    cat "$LAB_RESULTS/guests/$name.create.log" >&2
    echo "xl create $name failed" >&2
    return 1
  fi
  lab_timing "create_$name" "$(lab_since "$t0")"
  mkdir -p /run/lab-domid
  xl domid "$name" >"/run/lab-domid/$name" 2>/dev/null || { echo "no domid for $name after create" >&2; return 1; }
}

# lab_domid NAME: print the domain id (remembered at create: each xl process costs seconds
# under emulation on a loaded machine).
lab_domid() {
  if [ -s "/run/lab-domid/$1" ]; then cat "/run/lab-domid/$1"; else xl domid "$1" 2>/dev/null; fi
}

# lab_guest_wait_ready NAME [SECONDS]: wait until the guest's init has written data/lab/ready.
lab_guest_wait_ready() {
  local name=$1 limit=${2:-240} id t0
  id=$(lab_domid "$name") || { echo "no domain $name" >&2; return 1; }
  t0=$(lab_now)
  lab_wait_for "$limit" "guest $name (domid $id) to boot" \
    xenstore-read "/local/domain/$id/data/lab/ready" || return 1
  lab_timing "ready_$name" "$(lab_since "$t0")"
}

# Sequence numbers must stay unique when helpers run in subshells ($(...)): use the clock. They
# start with a letter: a value starting with '-' would read as an option to xenstore-write.
_lab_guest_send() {
  local name=$1 mode=$2 cmd=$3 id
  id=$(lab_domid "$name") || { echo "no domain $name" >&2; return 1; }
  _lab_cmd_seq="c${EPOCHREALTIME/./}r$RANDOM"
  _lab_cmd_dom=$id
  xenstore-write -R "/local/domain/$id/data/lab/cmd" "$_lab_cmd_seq $mode $cmd"
}
_lab_guest_answer() {
  local limit=$1 ans end pause=0.2
  end=$((EPOCHSECONDS + limit))
  while :; do
    ans=$(xenstore-read -R "/local/domain/$_lab_cmd_dom/data/lab/done" 2>/dev/null || true)
    [ "${ans%% *}" = "$_lab_cmd_seq" ] && break
    if [ "$EPOCHSECONDS" -ge "$end" ]; then
      echo "no answer from domid $_lab_cmd_dom within ${limit} s" >&2
      return 124
    fi
    sleep $pause
    pause=1
  done
  # "SEQ STATUS" on the first line, the output after it.
  local head=${ans%%$'\n'*}
  [ "$head" = "$ans" ] || printf '%s\n' "${ans#*$'\n'}"
  return "${head#* }"
}

# lab_guest_run NAME SECONDS CMD: run a shell command in the guest, print its output (last
# 1900 bytes), return its status.
lab_guest_run() {
  _lab_guest_send "$1" run "$3" || return 1
  _lab_guest_answer "$2"
}

# lab_guest_start NAME CMD: start a shell command in the guest's background (output to its
# console log).
lab_guest_start() {
  _lab_guest_send "$1" start "$2" || return 1
  _lab_guest_answer 60 >/dev/null
}

# lab_guest_shutdown NAME [SECONDS]: orderly shutdown: the guest powers off and xl's monitor
# (the `xl create` child) destroys the domain. The request is the xenstore write `xl shutdown`
# makes (control/shutdown = poweroff), done directly: one light process instead of an xl one.
lab_guest_shutdown() {
  local name=$1 limit=${2:-180} id t0
  id=$(lab_domid "$name") || { echo "no domain $name" >&2; return 1; }
  t0=$(lab_now)
  xenstore-write "/local/domain/$id/control/shutdown" poweroff ||
    { echo "cannot write $name's control/shutdown" >&2; return 1; }
  lab_wait_for "$limit" "$name (domid $id) to power off and go away" \
    sh -c "! xenstore-exists /local/domain/$id" || return 1
  rm -f "/run/lab-domid/$name"
  lab_timing "shutdown_$name" "$(lab_since "$t0")"
}

# lab_console_has NAME REGEX: true when the guest's console log matches.
lab_console_has() { grep -Eq "$2" "$LAB_RESULTS/guests/guest-$1.log" 2>/dev/null; }
