#!/usr/bin/env bash
# Builds the .deb with dpkg-deb.
#
#   bash installer/debian/build-deb.sh VERSION FROZEN_DIR OUT.deb
#   bash installer/debian/build-deb.sh VERSION --test-payload OUT.deb
#
# FROZEN_DIR is the PyInstaller one-folder build (dist/teller-guard: teller-guard,
# teller-guard-agent, _internal/), installed as /opt/teller-guard. --test-payload puts in
# stand-in scripts that only print "TEST PAYLOAD" (for the package tests; the control file's
# description says so too).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
installer="$(dirname "$here")"
[ "$#" -eq 3 ] || { echo "usage: $0 VERSION FROZEN_DIR|--test-payload OUT.deb" >&2; exit 2; }
version=$1 payload=$2 out=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pkg=$work/pkg
mkdir -p "$pkg/DEBIAN" "$pkg/opt/teller-guard" "$pkg/etc/xdg/autostart" \
         "$pkg/lib/systemd/system" "$pkg/etc/teller-guard" "$pkg/usr/share/doc/teller-guard" \
         "$pkg/usr/bin"
if [ "$payload" = "--test-payload" ]; then
  for exe in teller-guard teller-guard-agent; do
    printf '#!/bin/sh\necho "TEST PAYLOAD: %s stand-in, not Teller Guard"\n' "$exe" > "$pkg/opt/teller-guard/$exe"
    chmod 0755 "$pkg/opt/teller-guard/$exe"
  done
  mkdir -p "$pkg/opt/teller-guard/_internal"
  echo "TEST PAYLOAD - NOT TELLER GUARD - NOT FOR DEPLOYMENT" > "$pkg/opt/teller-guard/_internal/README-TEST-PAYLOAD.txt"
  note=" (TEST PAYLOAD, not for deployment)"
else
  for f in teller-guard teller-guard-agent _internal; do
    [ -e "$payload/$f" ] || { echo "$0: $payload/$f is missing (not a frozen build)" >&2; exit 2; }
  done
  cp -a "$payload/." "$pkg/opt/teller-guard/"
  note=""
fi
ln -s /opt/teller-guard/teller-guard "$pkg/usr/bin/teller-guard"
install -m 0644 "$installer/teller-guard-agent.desktop" "$pkg/etc/xdg/autostart/"
install -m 0644 "$installer/teller-guard.service" "$pkg/lib/systemd/system/"
install -m 0644 "$here/policy.toml" "$pkg/etc/teller-guard/policy.toml"
install -m 0644 "$here/install.env.example" "$pkg/usr/share/doc/teller-guard/"
install -m 0644 "$here/conffiles" "$pkg/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$here/$s" "$pkg/DEBIAN/$s"; done
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" \
    -e "1,/^Description:/s/^\(Description: .*\)$/\1$note/" "$here/control.in" > "$pkg/DEBIAN/control"
mkdir -p "$(dirname "$out")"
# xz for what ships; a check that only installs the package may ask for a faster compressor
# (TELLER_GUARD_DEB_COMPRESSION=gzip: compressing ~460 MB with xz took minutes on 2 cores)
dpkg-deb --root-owner-group "-Z${TELLER_GUARD_DEB_COMPRESSION:-xz}" --build "$pkg" "$out" >/dev/null
echo "built $out ($(du -k "$out" | cut -f1) KiB)"
