#!/usr/bin/env bash
# Build (and cache under build/lab/img) what QEMU boots: the Xen ELF, the kernel (compressed for
# dom0, uncompressed vmlinux for PV guests: xl would spend seconds decompressing it under
# emulation), a busybox initrd for dom0 and one for guests.
#
# Each artefact is rebuilt only when a manifest of its inputs (paths and content hashes) changed.
# Guest binaries: build/bin/* (xenballoon-report, eatmem once built) plus the xenstore client;
# LAB_GUEST_BINARIES (space-separated absolute paths) replaces the build/bin part.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

lab_need_cmd gzip xz cpio dpkg-deb sha256sum ldd busybox
[ -f "$LAB_XEN_GZ" ] || lab_die "$LAB_XEN_GZ missing — run 'make setup-lab'"
[ -e "$LAB_DEBS/kernel.deb" ] || lab_die "no kernel package in $LAB_DEBS — run 'make setup-lab'"
BUSYBOX=$(command -v busybox)
file "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' ||
  lab_die "$BUSYBOX is not static — install busybox-static ('make setup-lab')"

mkdir -p "$LAB_IMG"
t0=$(lab_now)
built=()

# fresh NAME MANIFEST: true when img/NAME.manifest equals MANIFEST (and the artefact exists).
fresh() { [ -e "$LAB_IMG/$1" ] && [ -f "$LAB_IMG/$1.manifest" ] && [ "$(cat "$LAB_IMG/$1.manifest")" = "$2" ]; }
hash_of() { sha256sum "$@" | awk '{ print $1 }'; }
# Changing how images are built must rebuild them too.
SELF=$(hash_of "$0" "$LAB_SRC/lib.sh" | sha256sum | cut -c1-16)

# --- Xen: the package ships a gzipped multiboot ELF; QEMU's -kernel wants it plain.
m="xen $(hash_of "$LAB_XEN_GZ")"
if ! fresh xen "$m"; then
  gzip -dc "$LAB_XEN_GZ" >"$LAB_IMG/xen.tmp" && mv "$LAB_IMG/xen.tmp" "$LAB_IMG/xen"
  echo "$m" >"$LAB_IMG/xen.manifest"; built+=(xen)
fi

# --- Kernel: unpack the .deb once (never installed on this machine).
deb=$(readlink -f "$LAB_DEBS/kernel.deb")
m="kernel $(basename "$deb")"
if ! fresh vmlinux "$m" || [ ! -e "$LAB_IMG/vmlinuz" ]; then
  rm -rf "$LAB_IMG/kpkg" && mkdir -p "$LAB_IMG/kpkg"
  dpkg-deb -x "$deb" "$LAB_IMG/kpkg"
  vmlinuz=$(ls "$LAB_IMG"/kpkg/boot/vmlinuz-* | head -n1)
  cp "$vmlinuz" "$LAB_IMG/vmlinuz"
  # Debian's bzImage holds an xz stream: find its magic and decompress the first stream only.
  off=$(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$vmlinuz" | head -n1 | cut -d: -f1)
  [ -n "$off" ] || lab_die "no xz stream in $vmlinuz (kernel no longer xz-compressed?)"
  tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream >"$LAB_IMG/vmlinux.tmp" 2>/dev/null || true
  head -c 4 "$LAB_IMG/vmlinux.tmp" | grep -q 'ELF' || lab_die "extracting vmlinux from $vmlinuz failed"
  mv "$LAB_IMG/vmlinux.tmp" "$LAB_IMG/vmlinux"
  basename "$vmlinuz" | sed 's/^vmlinuz-//' >"$LAB_IMG/kernel-release"
  echo "$m" >"$LAB_IMG/vmlinux.manifest"; built+=(kernel)
fi
KREL=$(cat "$LAB_IMG/kernel-release")
KMOD=$LAB_IMG/kpkg/lib/modules/$KREL

# --- Dom0 modules, in dependency order (the package has no modules.dep: read each module's
# own `depends=` from its .modinfo strings).
DOM0_MODULES="virtio_pci 9pnet_virtio 9p xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc"
ko_path() {
  local n=$1 p
  p=$(find "$KMOD/kernel" \( -name "$n.ko" -o -name "${n//_/-}.ko" -o -name "${n//-/_}.ko" \) | head -n1)
  [ -n "$p" ] || lab_die "kernel module $n not found in $KMOD"
  echo "$p"
}
declare -A seen=()
ordered=()
add_module() {
  local n=${1//-/_} p d
  [ -n "${seen[$n]:-}" ] && return 0
  seen[$n]=1
  p=$(ko_path "$1")
  for d in $(tr '\0' '\n' <"$p" | sed -n 's/^depends=//p' | tr ',' ' '); do add_module "$d"; done
  ordered+=("$p")
}
for n in $DOM0_MODULES; do add_module "$n"; done

# copy_with_libs STAGE DIR FILE...: copy executables into STAGE/DIR and the shared libraries
# ldd names at their own absolute paths, so the executables run in a busybox initrd.
copy_with_libs() {
  local stage=$1 dir=$2 f lib
  shift 2
  mkdir -p "$stage$dir"
  for f in "$@"; do
    cp -L "$f" "$stage$dir/"
    for lib in $(ldd "$f" 2>/dev/null | awk '/=> \// { print $3 } /^[ \t]*\/[^ ]+ \(/ { print $1 }'); do
      [ -e "$stage$lib" ] && continue
      mkdir -p "$stage$(dirname "$lib")"
      cp -L "$lib" "$stage$lib"
    done
  done
}

# busybox_root STAGE: a root with busybox and a symlink per applet.
busybox_root() {
  local stage=$1 a
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc}
  cp "$BUSYBOX" "$stage/bin/busybox"
  for a in $("$BUSYBOX" --list-full); do
    [ -e "$stage/$a" ] || ln -s /bin/busybox "$stage/$a"
  done
}

pack() { (cd "$1" && find . -print0 | sort -z | cpio --null -o -H newc --quiet) | gzip -6 >"$2.tmp" && mv "$2.tmp" "$2"; }

# --- Dom0 initrd.
m="dom0-initrd script=$SELF busybox=$(hash_of "$BUSYBOX") init=$(hash_of "$LAB_SRC/initrd/dom0-init") kernel=$KREL modules=${ordered[*]##*/}"
if ! fresh dom0-initrd.gz "$m"; then
  stage=$(mktemp -d "$LAB_BUILD/stage-dom0.XXXXXX")
  busybox_root "$stage"
  mkdir -p "$stage/modules"
  : >"$stage/modules/order"
  for p in "${ordered[@]}"; do cp "$p" "$stage/modules/"; basename "$p" >>"$stage/modules/order"; done
  install -m 0755 "$LAB_SRC/initrd/dom0-init" "$stage/init"
  pack "$stage" "$LAB_IMG/dom0-initrd.gz"
  rm -rf "$stage"
  echo "$m" >"$LAB_IMG/dom0-initrd.gz.manifest"; built+=(dom0-initrd)
fi

# --- Guest initrd: busybox, the xenstore client (guests talk to xenstored through
# /dev/xen/xenbus), and the project's guest binaries with their libraries.
XS_TOOLS="xenstore-read xenstore-write xenstore-ls xenstore-list xenstore-rm xenstore-exists xenstore-watch xenstore-chmod"
if [ -n "${LAB_GUEST_BINARIES+set}" ]; then
  guest_bins=($LAB_GUEST_BINARIES)
else
  guest_bins=()
  for f in "$LAB_ROOT"/build/bin/*; do [ -f "$f" ] && [ -x "$f" ] && guest_bins+=("$f"); done
fi
m="guest-initrd script=$SELF busybox=$(hash_of "$BUSYBOX") init=$(hash_of "$LAB_SRC/initrd/guest-init") xenstore=$(hash_of /usr/bin/xenstore)"
for f in "${guest_bins[@]}"; do m+=" $(basename "$f")=$(hash_of "$f")"; done
if ! fresh guest-initrd.gz "$m"; then
  stage=$(mktemp -d "$LAB_BUILD/stage-guest.XXXXXX")
  busybox_root "$stage"
  copy_with_libs "$stage" /usr/bin /usr/bin/xenstore
  for t in $XS_TOOLS; do ln -sf xenstore "$stage/usr/bin/$t"; done
  [ ${#guest_bins[@]} -eq 0 ] || copy_with_libs "$stage" /usr/local/bin "${guest_bins[@]}"
  install -m 0755 "$LAB_SRC/initrd/guest-init" "$stage/init"
  # The kernel runs /sbin/poweroff on `xl shutdown`; busybox's own would signal init (a shell
  # script here, which ignores it), so power off directly.
  rm -f "$stage/sbin/poweroff"
  printf '#!/bin/sh\nsync\nexec /bin/busybox poweroff -f\n' >"$stage/sbin/poweroff"
  chmod 0755 "$stage/sbin/poweroff"
  pack "$stage" "$LAB_IMG/guest-initrd.gz"
  rm -rf "$stage"
  echo "$m" >"$LAB_IMG/guest-initrd.gz.manifest"; built+=(guest-initrd)
fi

if [ ${#built[@]} -gt 0 ]; then
  lab_log "images: built ${built[*]} in $(lab_since "$t0") s"
else
  lab_log "images: cached ($(lab_since "$t0") s)"
fi
