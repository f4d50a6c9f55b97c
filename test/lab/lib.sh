# Shared by the host-side lab scripts (setup.sh, build-images.sh, run.sh). Sourced, not run.
# Paths are absolute: QEMU, dom0 (which sees this machine's root over 9p) and xl all use them.

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_ROOT=$(cd "$LAB_SRC/../.." && pwd)
LAB_BUILD=$LAB_ROOT/build/lab
LAB_IMG=$LAB_BUILD/img
LAB_DEBS=$LAB_BUILD/debs
LAB_RESULTS=$LAB_BUILD/results

# The Xen release the lab boots: the hypervisor package and the tools in dom0 must match.
LAB_XEN_VERSION=4.17
LAB_XEN_GZ=/boot/xen-$LAB_XEN_VERSION-amd64.gz

# Debian packages the lab needs on the host (dom0 runs this machine's own tools).
LAB_APT_PACKAGES="qemu-system-x86 xen-hypervisor-$LAB_XEN_VERSION-amd64 xen-utils-$LAB_XEN_VERSION
  xenstore-utils libxenstore4 busybox-static cpio xz-utils gzip coreutils"

lab_log() { printf 'lab: %s\n' "$*" >&2; }

# A failure whose cause is outside the project (a package that cannot be installed, a machine
# that cannot run QEMU) must be loud and name that cause, never look like a skipped test.
lab_die() {
  printf 'lab: FAILED: %s\n' "$*" >&2
  exit 1
}

lab_need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || lab_die "'$c' is not installed — run 'make setup-lab' (as root)"
  done
}

# Seconds since the epoch with fractions, for timings.
lab_now() { date +%s.%N; }

# Elapsed seconds (one decimal) since a lab_now stamp.
lab_since() { awk -v a="$1" -v b="$(lab_now)" 'BEGIN { printf "%.1f", b - a }'; }
