#!/usr/bin/env bash
# The Debian package on a stock Debian 12: makes a fresh Debian 12 root with debootstrap,
# installs the .deb there with apt (so its Depends come from Debian: nodejs 18, libxenstore4,
# libxenmisc4.17), and runs the tools under Debian's own node:
#   xenballoonctl --version, xenballoond --version,
#   xenballoonctl policy check /etc/xenballoond/policy.yaml,
#   xenballoonctl simulate --scenario paper-idle-2g.
# Needs root and the Debian mirror. Caches only under build/deb-check/ (the base system's .debs
# as a debootstrap tarball, apt's downloads); the root itself is made anew each run.
# usage: test/deb/check.sh build/deb/xenballoond_VERSION_amd64.deb   (`make deb-check`)
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=${1:?usage: check.sh PACKAGE.deb}
[ -f "$deb" ] || { echo "deb-check: no $deb (run make deb)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "deb-check: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "deb-check: debootstrap is missing: run 'sudo make setup-deb'" >&2; exit 1; }

mirror=${DEB_CHECK_MIRROR:-http://deb.debian.org/debian}
work=$PWD/build/deb-check
root=$work/root
tarball=$work/bookworm-minbase.tgz
start=$SECONDS
say() { echo "deb-check: [$((SECONDS - start)) s] $*" >&2; }

cleanup() {
  for m in var/cache/apt/archives dev proc; do
    mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
  done
  rm -rf "$root"
}
trap cleanup EXIT
cleanup
mkdir -p "$work/apt-archives/partial"

if [ ! -s "$tarball" ]; then
  say "downloading Debian 12's base system into $tarball (once)"
  rm -rf "$work/tarball-work"
  debootstrap --variant=minbase --make-tarball="$tarball" bookworm "$work/tarball-work" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
fi
say "debootstrap bookworm (minbase) into $root"
debootstrap --variant=minbase --unpack-tarball="$tarball" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }

mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind "$work/apt-archives" "$root/var/cache/apt/archives"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# No services start in the chroot (and there is no systemd running in it anyway).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "$@"; }

cp "$deb" "$root/tmp/"
say "apt-get install ./$(basename "$deb") (Depends from $mirror)"
in_root apt-get update -qq
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$deb")" \
  >"$work/apt-install.log" 2>&1 || { tail -30 "$work/apt-install.log" >&2; exit 1; }
say "installed: $(in_root dpkg-query -W -f='${Package} ${Version}' xenballoond), nodejs $(in_root dpkg-query -W -f='${Version}' nodejs)"

fail() { echo "deb-check: FAILED: $*" >&2; exit 1; }
run() {
  say "\$ $*"
  in_root "$@" || fail "$* (exit $?)"
}
node_version=$(in_root node --version)
case "$node_version" in v18.*) ;; *) fail "expected Debian 12's node 18, found $node_version" ;; esac
v=$(run xenballoonctl --version); echo "$v"
[[ $v == "xenballoonctl "*" (node v18."* ]] || fail "xenballoonctl --version printed '$v'"
v=$(run xenballoond --version); echo "$v"
[[ $v == "xenballoond "*" (node v18."* ]] || fail "xenballoond --version printed '$v'"
run xenballoonctl policy check /etc/xenballoond/policy.yaml
run xenballoonctl simulate --scenario paper-idle-2g --out /tmp/sim | tee "$work/simulate.txt"
grep -q '^xenballoond ' "$work/simulate.txt" || fail "simulate printed no xenballoond row"
# The daemon's own start-up path under node 18 (policy, koffi, libxenctrl): outside a dom0 it
# must refuse in one line, not crash.
set +e
out=$(in_root xenballoond --control /tmp/x.sock 2>&1); rc=$?
set -e
say "xenballoond outside a dom0: exit $rc: $out"
[ "$rc" = 1 ] && [[ $out == "xenballoond: cannot open libxenctrl"* ]] || fail "xenballoond outside a dom0: exit $rc, '$out'"
in_root man -w xenballoond xenballoonctl xenballoond.policy >/dev/null 2>&1 || say "(man is not in minbase: man pages not read)"
say "passed"
