#!/usr/bin/env bash
# Installs a built xt .deb into a fresh Debian bookworm root (debootstrap, minbase) with dpkg
# and apt (which fetches the runtime libraries its Depends names), then runs the recorder the
# way its systemd unit does (ExecStart, User, WorkingDirectory, Environment from
# xt-recorder.service), checks it serves its login page and lets the admin postinst printed log
# in, and stops it with SIGTERM. Root only. The minbase root is cached in
# .build/debootstrap/ after the first run; packages come from this machine's apt mirror.
# Usage: test-deb.sh DEB   Exit 0 when every check passed.
set -euo pipefail
DEB=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "test-deb: needs root (debootstrap, chroot)" >&2; exit 2; }
CACHE="$ROOT/.build/debootstrap/bookworm-minbase.tgz"
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
WORK=$(mktemp -d /var/tmp/xt-deb.XXXXXX)
TARGET="$WORK/root"
recorder=""
cleanup() {
  [ -n "$recorder" ] && kill -9 "$recorder" 2>/dev/null
  for mount in "$TARGET/var/cache/apt/archives" "$TARGET/proc"; do mountpoint -q "$mount" && umount -l "$mount"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "test-deb: $*" >&2; exit 1; }

if [ ! -s "$CACHE" ]; then
  mkdir -p "$(dirname "$CACHE")"
  debootstrap --variant=minbase --make-tarball="$CACHE.new" bookworm "$WORK/tarball" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap could not fetch bookworm from $MIRROR"; }
  mv "$CACHE.new" "$CACHE"
fi
debootstrap --variant=minbase --unpack-tarball="$CACHE" bookworm "$TARGET" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
  || { tail -20 "$WORK/debootstrap.log" >&2; fail "debootstrap could not make the root"; }
echo "test-deb: a fresh bookworm root in $TARGET"
# This machine's apt sources (with updates and security, as its packages came from) and its
# package cache, so that libraries it already fetched are not fetched again.
cp /etc/apt/sources.list.d/*.sources "$TARGET/etc/apt/sources.list.d/" 2>/dev/null && rm -f "$TARGET/etc/apt/sources.list"
cp /etc/resolv.conf "$TARGET/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$TARGET/proc"
mkdir -p "$TARGET/var/cache/apt/archives" && mount --bind /var/cache/apt/archives "$TARGET/var/cache/apt/archives"
cp "$DEB" "$TARGET/tmp/xt.deb"

# dpkg alone refuses it (its libraries are not there yet) and names them; apt brings them.
if chroot "$TARGET" dpkg -i /tmp/xt.deb > "$WORK/dpkg.log" 2>&1; then fail "dpkg -i succeeded without the libraries: Depends is empty?"; fi
grep -q "dependency problems" "$WORK/dpkg.log" || { cat "$WORK/dpkg.log" >&2; fail "dpkg -i failed for another reason"; }
chroot "$TARGET" env DEBIAN_FRONTEND=noninteractive apt-get update -q > "$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log" >&2; fail "apt-get update failed"; }
chroot "$TARGET" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -f > "$WORK/install.log" 2>&1 \
  || { tail -30 "$WORK/install.log" >&2; fail "apt-get could not complete the install"; }
chroot "$TARGET" dpkg -s xt | grep -q "Status: install ok installed" || fail "xt is not installed"
# FFmpeg (which xt loads on first use) and libmosquitto came with it.
chroot "$TARGET" sh -c 'ls /usr/lib/*/libavformat.so.* /usr/lib/*/libmosquitto.so.*' > /dev/null 2>&1 || fail "FFmpeg or libmosquitto did not come with xt"
password=$(sed -n 's/.*has one user: admin, password \([A-Za-z0-9]*\).*/\1/p' "$WORK/install.log" "$WORK/dpkg.log" | head -1)
[ -n "$password" ] || { cat "$WORK/dpkg.log" "$WORK/install.log" | tail -30 >&2; fail "postinst printed no first admin"; }
echo "test-deb: installed; postinst made the first admin"
chroot "$TARGET" getent passwd xt | grep -q "/var/lib/xt" || fail "no xt user in the root"
[ "$(chroot "$TARGET" stat -c %U /var/lib/xt/recorder.key)" = xt ] || fail "the recorder's key is not the xt user's"
[ "$(chroot "$TARGET" stat -c '%a %U:%G' /etc/xt/recorder.conf)" = "640 root:xt" ] || fail "recorder.conf is not 0640 root:xt (it may hold a password)"
for file in recorder.conf authorized_keys agent-camera.conf; do
  grep -q "^/etc/xt/$file$" "$TARGET/var/lib/dpkg/info/xt.conffiles" || fail "/etc/xt/$file is not a conffile"
done

# The recorder as its unit runs it, on a free port for its web UI.
UNIT="$TARGET/lib/systemd/system/xt-recorder.service"
[ -f "$TARGET/lib/systemd/system/xt-agent@.service" ] || fail "no xt-agent@.service"
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
user=$(sed -n 's/^User=//p' "$UNIT"); directory=$(sed -n 's/^WorkingDirectory=//p' "$UNIT"); environment=$(sed -n 's/^Environment=//p' "$UNIT")
[ -n "$exec_start" ] && [ "$user" = xt ] || fail "the unit has no ExecStart or does not run as xt"
port=$((40000 + RANDOM % 10000))
sed -i "s|^http = .*|http = 127.0.0.1:$port|" "$TARGET/etc/xt/recorder.conf"
udp=$((30000 + RANDOM % 9000))
exec_start=${exec_start/--ports 9000/--ports $udp}
chroot --userspec="$user:$user" "$TARGET" env $environment HOME="$directory" sh -c "cd $directory && exec $exec_start" > "$WORK/recorder.log" 2>&1 &
recorder=$!
for _ in $(seq 300); do grep -q "web UI on" "$WORK/recorder.log" && break; kill -0 $recorder 2>/dev/null || break; sleep 0.1; done
grep -q "web UI on" "$WORK/recorder.log" || { cat "$WORK/recorder.log" >&2; fail "the packaged recorder did not start its web UI"; }
page=$(curl -s "http://127.0.0.1:$port/login.html")
echo "$page" | grep -q "<form" || { echo "$page" | head -5 >&2; fail "no login page"; }
code=$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$port/api/cameras")
[ "$code" = 401 ] || fail "the API answered $code without a login"
login=$(curl -s -H 'content-type: application/json' -d "{\"name\":\"admin\",\"password\":\"$password\"}" "http://127.0.0.1:$port/api/login")
echo "$login" | grep -q '"admin"' || fail "the first admin cannot log in: $login"
echo "test-deb: the packaged recorder serves its login page, and the first admin logs in"
kill -TERM $recorder
for _ in $(seq 300); do kill -0 $recorder 2>/dev/null || break; sleep 0.1; done
if kill -0 $recorder 2>/dev/null; then fail "the recorder did not stop within 30 s of SIGTERM"; fi
wait $recorder && status=0 || status=$?
recorder=""
[ "$status" -eq 0 ] || { tail -20 "$WORK/recorder.log" >&2; fail "the recorder exited with $status on SIGTERM"; }
grep -q "recorder stopped" "$WORK/recorder.log" || fail "the recorder did not say it stopped"
echo "test-deb: it stopped cleanly on SIGTERM"
echo "test-deb: passed"
