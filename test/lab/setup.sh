#!/usr/bin/env bash
# `make setup-lab`: install the Debian packages the lab needs and fetch the guest/dom0 kernel
# package. Idempotent: installs only what dpkg says is missing, downloads the kernel only when
# the one apt resolves is not cached yet. Needs root for apt-get install.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

missing=()
for p in $LAB_APT_PACKAGES; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || lab_die "missing Debian packages: ${missing[*]} — run 'sudo make setup-lab'"
  lab_log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Fresh machines often have no package lists yet: update once if the first try fails.
  # Every apt step under a limit: a held dpkg lock or a dead mirror must fail, not hang.
  if ! timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    timeout 300 apt-get update -qq || lab_die "apt-get update failed (or took over 300 s): no Debian mirror reachable"
    timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
      lab_die "cannot install ${missing[*]} with apt-get within 900 s (see the error above)"
  fi
fi
[ -f "$LAB_XEN_GZ" ] || lab_die "$LAB_XEN_GZ is missing although xen-hypervisor-$LAB_XEN_VERSION-amd64 is installed"

# The kernel: the package the linux-image-amd64 metapackage points at (the current 6.1 ABI).
# It is only unpacked (dpkg -x), never installed, so this machine's own boot is untouched.
mkdir -p "$LAB_DEBS"
resolve_kernel() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-6\.1\.[0-9.-]+-amd64$/ { print $2; exit }'
}
pkg=$(resolve_kernel || true)
if [ -z "$pkg" ]; then
  timeout 300 apt-get update -qq || true
  pkg=$(resolve_kernel || true)
fi
if [ -z "$pkg" ]; then
  # Offline but already fetched once: keep using the cached kernel.
  [ -e "$LAB_DEBS/kernel.deb" ] && { lab_log "kernel: using cached $(readlink "$LAB_DEBS/kernel.deb")"; exit 0; }
  lab_die "apt cannot resolve the linux-image-amd64 kernel package (no package lists or no mirror)"
fi
deb=$(ls "$LAB_DEBS/${pkg}_"*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
  lab_log "downloading $pkg"
  (cd "$LAB_DEBS" && timeout 600 apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) ||
    true
  deb=$(ls "$LAB_DEBS/${pkg}_"*.deb 2>/dev/null | head -n1 || true)
  [ -n "$deb" ] || lab_die "apt-get download $pkg failed (or took over 600 s)"
fi
ln -sfn "$(basename "$deb")" "$LAB_DEBS/kernel.deb"
lab_log "setup-lab: packages present, kernel $(basename "$deb")"
