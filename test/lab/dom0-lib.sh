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
# Bash builtins only where it can be: each process started in this dom0 costs from a tenth of a
# second to seconds (fork and exec of a PV guest under emulation, on a loaded machine), and the
# helpers run in polling loops next to the daemon under test.
# Seconds since dom0 booted, for scenario logs.
lab_clock() {
  local up _
  read -r up _ </proc/uptime
  echo "$up"
}
lab_now() { echo "$EPOCHREALTIME"; }
# Seconds (one decimal) since a lab_now stamp.
lab_since() {
  local a=${1/./} b=${EPOCHREALTIME/./}
  local d=$(((10#$b - 10#$a) / 100000))
  echo "$((d / 10)).$((d % 10))"
}
# lab_sleep SECONDS: sleep without a process: a read that times out on a FIFO nobody writes
# (opened read-write, so the open does not wait for a writer; removed at once, the fd stays).
_lab_sleep_fifo=${TMPDIR:-/tmp}/lab-sleep.$$.$RANDOM
mkfifo "$_lab_sleep_fifo"
exec {_lab_sleep_fd}<>"$_lab_sleep_fifo"
rm -f "$_lab_sleep_fifo"
lab_sleep() { read -rt "$1" -u "$_lab_sleep_fd" || true; }
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
    lab_sleep 0.5
  done
}

# lab_guest_config NAME [MEMORY_MIB] [MAXMEM_MIB] [KEY=VALUE...]: write the xl config of a PV
# guest to guests/NAME.cfg and print its path. KEY=VALUE pairs go to the guest kernel command
# line (e.g. lab_boot=eatmem,--rounds,3); the guest console is logged to guests/guest-NAME.log.
# LAB_GUEST_CMDLINE replaces the default kernel options (quiet: each console line costs dom0
# work under emulation; OOM kills are errors and still show).
lab_guest_config() {
  local name=$1 mem=${2:-128} maxmem=${3:-256} cfg
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
  echo "$cfg"
}

# lab_guest_remember NAME: note its domid once (after xl create, or whatever created it).
lab_guest_remember() {
  mkdir -p /run/lab-domid
  xl domid "$1" >"/run/lab-domid/$1" 2>/dev/null || { echo "no domid for $1 after create" >&2; return 1; }
}

# lab_guest_create NAME [MEMORY_MIB] [MAXMEM_MIB] [KEY=VALUE...]: create a PV guest (config as
# lab_guest_config) with xl create; its output goes to guests/NAME.create.log.
lab_guest_create() {
  local name=$1 cfg t0
  cfg=$(lab_guest_config "$@") || return 1
  t0=$(lab_now)
  if ! timeout 180 xl create "$cfg" >"$LAB_RESULTS/guests/$name.create.log" 2>&1; then
    cat "$LAB_RESULTS/guests/$name.create.log" >&2
    echo "xl create $name failed" >&2
    return 1
  fi
  lab_timing "create_$name" "$(lab_since "$t0")"
  lab_guest_remember "$name"
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
    lab_sleep $pause
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
