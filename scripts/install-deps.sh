#!/usr/bin/env bash
# Installs the Debian packages XTransport needs to build, test and benchmark.
# Idempotent: packages already present are skipped, so `make test` can call it every run.
set -euo pipefail

packages=(
  # build
  pkg-config libssl-dev libsqlite3-dev curl
  # media (later issues link these; installed now so one script serves every target)
  libavformat-dev libavcodec-dev libswscale-dev libswresample-dev libavutil-dev libv4l-dev libopus-dev libasound2-dev libspeexdsp-dev
  # MQTT (Home Assistant, Frigate-style topics): the client library, and a broker and clients for tests
  libmosquitto-dev mosquitto mosquitto-clients
  # speech and tones for the audio tests
  espeak-ng sox
  # tests and peers for `make bench`
  iproute2 nftables iperf3 srt-tools ffmpeg mptcpize rsync
  # the web UI's browser tests (headless, driven through WebDriver); VLC plays the HLS streams
  chromium chromium-driver fonts-dejavu-core vlc-bin vlc-plugin-base
  # `make deb` (dpkg-shlibdeps names the runtime libraries) and its install test (a fresh Debian root)
  dpkg-dev debootstrap
  # libFuzzer runtime for `make fuzz`; Python for the API fuzzer (schemathesis, from PyPI, below)
  # and for PESQ (pesq, from PyPI, built from source: gcc and Python's headers)
  libclang-rt-14-dev python3 python3-venv python3-dev gcc
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# schemathesis (the REST API fuzzer of `make test` and `make fuzz`) and pesq (ITU-T P.862
# speech quality, for the call tests) in a virtual environment under .build, so that nothing
# is installed into the system's Python.
python_tools() {
  local root venv
  root=$(cd "$(dirname "$0")/.." && pwd)
  venv="$root/.build/venv"
  [ -x "$venv/bin/st" ] && "$venv/bin/python" -c "import pesq" 2>/dev/null && return 0
  echo "install-deps: installing schemathesis and pesq into $venv"
  mkdir -p "$root/.build"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==4.32.5" "pesq==0.0.4" "numpy==2.4.6"
}

if [ ${#missing[@]} -eq 0 ]; then
  python_tools
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "install-deps: missing packages (${missing[*]}) and not root: run as root or install them" >&2
    exit 1
  fi
else
  SUDO=
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
python_tools
