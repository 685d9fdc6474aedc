#!/usr/bin/env bash
# Builds the Debian package xt_VERSION_ARCH.deb into .build/deb/ (dpkg-deb): the `xt` binary
# (release, with the Swift runtime and Foundation linked in statically), the web UI's files,
# the systemd units (xt-recorder.service, xt-agent@.service), conffiles under /etc/xt and the
# maintainer scripts (scripts/deb). Depends lists the Debian runtime libraries the binary links
# (dpkg-shlibdeps: libavcodec59, libmosquitto1, …), never the -dev packages.
# Usage: make-deb.sh [BINARY]   (default: builds .build/release/xt with --static-swift-stdlib)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VERSION=$(sed -n 's/.*static let current = "\([^"]*\)".*/\1/p' Sources/XTNet/XTVersion.swift)
[ -n "$VERSION" ] || { echo "make-deb: cannot read the version from Sources/XTNet/XTVersion.swift" >&2; exit 1; }
ARCH=$(dpkg --print-architecture)
BINARY=${1:-}
if [ -z "$BINARY" ]; then
  swift build -c release --product xt --static-swift-stdlib
  BINARY=.build/release/xt
fi
[ -x "$BINARY" ] || { echo "make-deb: no binary at $BINARY" >&2; exit 1; }
LIBRARIES=$(ldd "$BINARY")
if grep -q "libswiftCore\|libFoundation" <<< "$LIBRARIES"; then
  echo "make-deb: $BINARY links the Swift runtime dynamically: build it with --static-swift-stdlib" >&2
  exit 1
fi

OUT="$ROOT/.build/deb"
STAGE="$OUT/xt_${VERSION}_${ARCH}"
rm -rf "$STAGE" "$OUT"/xt_*.deb
mkdir -p "$STAGE/DEBIAN" "$STAGE/usr/bin" "$STAGE/usr/share/xt" "$STAGE/lib/systemd/system" "$STAGE/etc/xt" \
  "$STAGE/usr/share/doc/xt/examples"
install -m 0755 "$BINARY" "$STAGE/usr/bin/xt"
strip --strip-unneeded "$STAGE/usr/bin/xt"
cp -r web "$STAGE/usr/share/xt/web"
install -m 0644 Config/xt-recorder.service Config/xt-agent@.service "$STAGE/lib/systemd/system/"
# Conffiles: the recorder listens on the LAN (its web UI needs a login), and keeps its
# recordings in /var/lib/xt; one agent, "camera", for xt-agent@camera.
# (The example's files under Config/ are under /etc/xt here: the service runs in /var/lib/xt.)
sed -e 's|^http = 127.0.0.1:8480|http = 0.0.0.0:8480|' -e 's|Config/|/etc/xt/|g' Config/recorder.conf.example > "$STAGE/etc/xt/recorder.conf"
grep -q '^http = 0.0.0.0:8480' "$STAGE/etc/xt/recorder.conf" || { echo "make-deb: recorder.conf.example has no http line to open" >&2; exit 1; }
cp Config/authorized_keys.example "$STAGE/etc/xt/authorized_keys"
sed -e 's|Config/|/etc/xt/|g' Config/agent.conf.example > "$STAGE/etc/xt/agent-camera.conf"
cp Config/*.example "$STAGE/usr/share/doc/xt/examples/"
cp README.md "$STAGE/usr/share/doc/xt/"
chmod 0644 "$STAGE"/etc/xt/* "$STAGE"/usr/share/doc/xt/examples/* "$STAGE/usr/share/doc/xt/README.md"
find "$STAGE/usr/share/xt" -type d -exec chmod 0755 {} + && find "$STAGE/usr/share/xt" -type f -exec chmod 0644 {} +
(cd "$STAGE" && find etc -type f | sort | sed 's|^|/|') > "$STAGE/DEBIAN/conffiles"
install -m 0755 scripts/deb/postinst scripts/deb/prerm scripts/deb/postrm "$STAGE/DEBIAN/"

# The runtime libraries, as Debian packages (dpkg-shlibdeps wants a debian/control beside it).
SHLIBS="$OUT/shlibs"
rm -rf "$SHLIBS" && mkdir -p "$SHLIBS/debian"
printf 'Source: xt\n\nPackage: xt\nArchitecture: any\n' > "$SHLIBS/debian/control"
SHLIBDEPS=$(cd "$SHLIBS" && dpkg-shlibdeps -O "$STAGE/usr/bin/xt" 2>"$OUT/shlibdeps.log") \
  || { cat "$OUT/shlibdeps.log" >&2; echo "make-deb: dpkg-shlibdeps failed (is dpkg-dev installed?)" >&2; exit 1; }
DEPENDS=$(sed -n 's/^shlibs:Depends=//p' <<< "$SHLIBDEPS")
[ -n "$DEPENDS" ] || { echo "make-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
# FFmpeg is loaded on first use (dlopen, Sources/CFFmpeg/lazy.c), so the linker's list lacks it:
# the packages that ship the sonames xt was built against.
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
for lib in avutil avcodec avformat swscale swresample; do
  real=$(readlink -f "/usr/lib/$MULTIARCH/lib$lib.so")
  soname=$(basename "$real" | sed -E 's/^(lib[a-z]+\.so\.[0-9]+).*/\1/')
  package=$(dpkg -S "/usr/lib/$MULTIARCH/$soname" 2>/dev/null | cut -d: -f1 | head -1)
  [ -n "$package" ] || { echo "make-deb: no package ships $soname (is lib$lib-dev installed?)" >&2; exit 1; }
  DEPENDS="$DEPENDS, $package"
done
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: xt
Version: $VERSION
Architecture: $ARCH
Maintainer: XTransport <xt@localhost>
Installed-Size: $SIZE
Depends: $DEPENDS, passwd
Recommends: mosquitto
Section: video
Priority: optional
Description: security cameras and calls over an encrypted UDP transport
 XTransport records cameras (V4L2, RTSP, files) from Raspberry Pis to a
 recorder host over xtransport, a reliable, encrypted, congestion-controlled
 protocol over UDP: fMP4 segments, motion events, durable alarms, a web UI
 with live view (WebSocket or low-latency HLS), Home Assistant over MQTT,
 voice and video calls, and backups to several Pis.
CONTROL
DEB="$OUT/xt_${VERSION}_${ARCH}.deb"
dpkg-deb --build --root-owner-group -Zxz "$STAGE" "$DEB" >/dev/null
echo "make-deb: $DEB ($(du -h "$DEB" | cut -f1)); Depends: $DEPENDS, passwd"
