#!/usr/bin/env bash
# Builds build/deb/xenballoond_VERSION_amd64.deb with dpkg-deb from what `make deb` built (the
# bundles, man pages, C tools, shim), staged by `make install`, then runs lintian on it (any
# error fails the build; warnings are printed). usage: packaging/deb/build.sh VERSION
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${1:?usage: build.sh VERSION}
out=build/deb
root=$out/root
pkg=xenballoond
rm -rf "$root" && mkdir -p "$root/DEBIAN"

# One layout for both ways of installing; the unit's ExecStart= says /usr/sbin.
make --no-print-directory install DESTDIR="$PWD/$root" PREFIX=/usr/lib/$pkg SBINDIR=/usr/sbin \
  BINDIR=/usr/bin MANDIR=/usr/share/man UNITDIR=/lib/systemd/system SYSCONFDIR=/etc \
  NODE_INTERPRETER=/usr/bin/node >/dev/null

# Debian's rules: no debug symbols in shipped ELF files, docs in /usr/share/doc/PACKAGE.
find "$root" -type f \( -name '*.so' -o -name '*.node' \) -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} +
strip --remove-section=.comment --remove-section=.note "$root/usr/lib/$pkg/guest/"*
doc=$root/usr/share/doc/$pkg
install -d "$doc"
gzip -9nc packaging/deb/changelog > "$doc/changelog.gz"
node packaging/deb/copyright.mjs build/bundle/meta.json build/runtime/pino-pretty-meta.json > "$doc/copyright"
install -m 644 README.md docs/operations.md docs/policy.md docs/guest.md config/xenballoon-report.service "$doc/"
gzip -9n "$doc/policy.md" "$doc/operations.md" "$doc/guest.md" "$doc/README.md"

# Maintainer files: every file under /etc is a conffile (the policy and /etc/default).
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) > "$root/DEBIAN/conffiles"
install -m 755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$size/" packaging/deb/control.in > "$root/DEBIAN/control"

deb=$out/${pkg}_${version}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "make deb: $deb ($(du -h "$deb" | cut -f1))"

# lintian: errors fail the build; warnings are listed (docs/operations.md says which remain and why).
lintian_out=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v "^running with root privileges") || true
[ -z "$lintian_out" ] || echo "$lintian_out"
if grep -q '^E:' <<<"$lintian_out"; then echo "make deb: lintian reports errors" >&2; exit 1; fi
echo "make deb: lintian: $(grep -c '^E:' <<<"$lintian_out" || true) errors, $(grep -c '^W:' <<<"$lintian_out" || true) warnings"
