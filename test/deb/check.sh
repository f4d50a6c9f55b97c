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

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
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
# In the background with its own pid ($! is the program itself: chroot and env exec it).
bg_in_root() { (exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "$@") & }

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
# The daemon itself under node 18, against a simulated host (sim-host: our xenstored and a
# simulated hypervisor): it starts, steps, serves status and metrics, and stops on SIGTERM.
say "xenballoond against a simulated host (sim-host paper-idle-2g)"
port=$((20000 + RANDOM % 20000))
bg_in_root xenballoonctl sim-host --scenario paper-idle-2g --dir /tmp/simhost --forever --log-level warn >"$work/sim-host.log" 2>&1
host_pid=$!
pids+=("$host_pid")
for _ in $(seq 300); do [ -S "$root/tmp/simhost/hypervisor.sock" ] && [ -S "$root/tmp/simhost/xenstored.sock" ] && break; sleep 0.2; done
bg_in_root xenballoond --xenstore /tmp/simhost/xenstored.sock --hypervisor sim:/tmp/simhost/hypervisor.sock \
  --control /tmp/simhost/control.sock --metrics "127.0.0.1:$port" --log-format json >"$work/daemon.log" 2>&1
daemon_pid=$!
pids+=("$daemon_pid")
for _ in $(seq 300); do grep -q 'xenballoond started' "$work/daemon.log" && break; kill -0 $daemon_pid 2>/dev/null || break; sleep 0.2; done
grep -q 'xenballoond started' "$work/daemon.log" || { cat "$work/daemon.log" >&2; kill $host_pid; fail "xenballoond did not start under node 18"; }
run xenballoonctl --control /tmp/simhost/control.sock status >/dev/null
in_root node -e "fetch('http://127.0.0.1:$port/metrics').then(r => r.text()).then(t => { if (!/^xenballoond_/m.test(t)) process.exit(1); })" ||
  fail "no xenballoond metrics on 127.0.0.1:$port"
kill -TERM $daemon_pid; wait $daemon_pid || fail "xenballoond exited $? on SIGTERM"
kill -TERM $host_pid; wait $host_pid || true
grep -q '"level":50' "$work/daemon.log" && { grep '"level":50' "$work/daemon.log" >&2; fail "xenballoond logged errors"; }
say "xenballoond started, stepped, answered status and metrics, stopped cleanly"
files=$(in_root dpkg -L xenballoond)
for f in /usr/share/man/man8/xenballoond.8.gz /usr/share/man/man8/xenballoonctl.8.gz /usr/share/man/man5/xenballoond.policy.5.gz \
  /lib/systemd/system/xenballoond.service /usr/lib/xenballoond/guest/xenballoon-report; do
  grep -qx "$f" <<<"$files" || fail "the package lacks $f"
done
grep -qx 'ExecStart=/usr/sbin/xenballoond $XENBALLOOND_OPTS' "$root/lib/systemd/system/xenballoond.service" || fail "the unit's ExecStart= is not /usr/sbin/xenballoond"
[ "$(in_root dpkg-query -W -f='${Conffiles}' xenballoond | awk '{print $1}' | sort | tr '\n' ' ')" = "/etc/default/xenballoond /etc/xenballoond/policy.yaml " ] ||
  fail "conffiles are not /etc/default/xenballoond and /etc/xenballoond/policy.yaml"
say "passed"
