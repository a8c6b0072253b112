#!/usr/bin/env bash
# Builds the MSI with wixl (msitools) from TellerGuard.wxs on Linux.
#
#   bash installer/windows/build-msi.sh VERSION PAYLOAD_DIR OUT.msi
#   bash installer/windows/build-msi.sh VERSION --test-payload OUT.msi
#
# PAYLOAD_DIR is a frozen Windows build (teller-guard.exe, teller-guard-agent.exe, _internal\);
# the Windows runner builds the same source with the WiX toolset (build.ps1). --test-payload
# uses a stand-in made here, which is no Teller Guard at all: Wine's stub Windows Update service
# (wuauserv.exe) as teller-guard.exe, so the service installs and starts; hostname.exe as the
# agent; and _internal\README-TEST-PAYLOAD.txt saying so. It exists to test the package's
# tables, registry, service, upgrade and uninstall under Wine, and its summary says
# "TEST PAYLOAD, not for deployment".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ "$#" -eq 3 ] || { echo "usage: $0 VERSION PAYLOAD_DIR|--test-payload OUT.msi" >&2; exit 2; }
version=$1 payload=$2 out=$3
for tool in wixl wixl-heat msibuild; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing: apt-get install wixl msitools" >&2; exit 2; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
note="Privacy guard for bank teller PCs"
if [ "$payload" = "--test-payload" ]; then
  wine_pe=""
  for d in /usr/lib/x86_64-linux-gnu/wine/x86_64-windows /usr/lib/wine/x86_64-windows \
           /usr/lib64/wine/x86_64-windows; do
    [ -f "$d/wuauserv.exe" ] && wine_pe=$d && break
  done
  [ -n "$wine_pe" ] || { echo "$0: --test-payload needs Wine's 64-bit programs: apt-get install wine64" >&2; exit 2; }
  payload=$work/payload
  mkdir -p "$payload/_internal"
  cp "$wine_pe/wuauserv.exe" "$payload/teller-guard.exe"
  cp "$wine_pe/hostname.exe" "$payload/teller-guard-agent.exe"
  cp "$here/test-payload/README-TEST-PAYLOAD.txt" "$payload/_internal/"
  note="TEST PAYLOAD, not for deployment: stand-in executables"
fi
for f in teller-guard.exe teller-guard-agent.exe _internal; do
  [ -e "$payload/$f" ] || { echo "$0: $payload/$f is missing (not a frozen Windows build)" >&2; exit 2; }
done
payload=$(cd "$payload" && pwd)
# Everything under _internal\ (the shared runtime) as the component group "Runtime".
(cd "$payload" && find ./_internal -type f | LC_ALL=C sort |
  wixl-heat -p ./ --directory-ref INSTALLDIR --var var.PayloadDir --component-group Runtime \
            --win64) > "$work/runtime.wxs"
sed "s|Comments=\"[^\"]*\"|Comments=\"$note\"|" "$here/TellerGuard.wxs" > "$work/TellerGuard.wxs"
# wixl resolves sources against the working directory and refuses absolute ones.
(cd "$payload" && wixl -a x64 -D Version="$version" -D PayloadDir=. -D Win64=yes \
  -o "$work/out.msi" "$work/TellerGuard.wxs" "$work/runtime.wxs" 2> >(grep -v -e GLib-GObject -e '^$' >&2))
# The rows wixl cannot author (secure properties, the feature condition, LockPermissions).
grep -v -e '^--' -e '^[[:space:]]*$' "$here/post-build.sql" | while IFS= read -r query; do
  msibuild "$work/out.msi" -q "$query"
done
mkdir -p "$(dirname "$out")"
mv "$work/out.msi" "$out"
echo "built $out ($(du -k "$out" | cut -f1) KiB)"
