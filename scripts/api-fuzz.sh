#!/usr/bin/env bash
# The REST API under schemathesis (property-based API fuzzing from docs/openapi.yaml), logged
# in as an admin, against a real `xt recorder` with one synthetic camera recording: every
# operation gets generated and mutated requests (coverage, fuzzing and stateful phases).
# Passes when no request got a 5xx and the recorder is still running at the end.
# Usage: api-fuzz.sh XT [SECONDS]   (SECONDS of fuzzing, default 60; `make fuzz` gives more)
# Needs schemathesis in .build/venv (scripts/install-deps.sh puts it there).
set -uo pipefail
XT=$(realpath "$1")
BUDGET=${2:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ST="$ROOT/.build/venv/bin/st"
[ -x "$ST" ] || { echo "api-fuzz: schemathesis is missing: run scripts/install-deps.sh (it installs it into .build/venv)" >&2; exit 2; }
DIR=$(mktemp -d /tmp/xt-api-fuzz.XXXXXX)
cleanup() {
  [ -n "${agent:-}" ] && kill "$agent" 2>/dev/null
  [ -n "${recorder:-}" ] && kill "$recorder" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT
cd "$DIR"
for name in recorder cam; do "$XT" keygen --out $name.key >/dev/null 2>&1; done
password=fuzz-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$password" | "$XT" recorder passwd fuzzer --role admin 2>/dev/null > users.line
printf 'storage = recordings\nmin-free = 0\n%s\n' "$(cat users.line)" > recorder.conf
port=$((20000 + RANDOM % 10000)); http=$((port + 10000))
XT_WEB_ROOT="$ROOT/web" "$XT" recorder --config recorder.conf --http 127.0.0.1:$http --bind 127.0.0.1 --ports $port --key recorder.key \
  --open > recorder.log 2>&1 &
recorder=$!
for _ in $(seq 200); do grep -q "web UI on" recorder.log && break; sleep 0.1; done
"$XT" agent --config /dev/null --key cam.key --host 127.0.0.1:$port --host-key @recorder.key.pub --name gate --id 1.11 --channel 100 \
  --width 320 --height 180 --bitrate 300 --set motion=2-6:0.1,0.5>0.9,0.5 --set motion-period=20 > agent.log 2>&1 &
agent=$!
sleep 4
cookie=$(curl -s -i -H 'content-type: application/json' -d "{\"name\":\"fuzzer\",\"password\":\"$password\"}" "http://127.0.0.1:$http/api/login" \
  | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -1)
[ -n "$cookie" ] || { echo "api-fuzz: cannot log in" >&2; tail -20 recorder.log >&2; exit 1; }

# Logging out would end the session the fuzzer runs in; everything else is fair game.
"$ST" run "$ROOT/docs/openapi.yaml" --url "http://127.0.0.1:$http" -H "Cookie: $cookie" --checks not_a_server_error \
  --exclude-path /api/logout --max-time "$BUDGET" --workers 2 --seed "${FUZZ_SEED:-$RANDOM}" --no-color > fuzz.log 2>&1
status=$?
tail -25 fuzz.log
alive=yes
kill -0 "$recorder" 2>/dev/null || alive=no
if [ "$alive" = no ]; then
  echo "api-fuzz: the recorder died during the run:" >&2
  tail -40 recorder.log >&2
  exit 1
fi
if [ $status -ne 0 ]; then
  echo "api-fuzz: schemathesis found failures (exit $status); the recorder's log ends:" >&2
  tail -20 recorder.log >&2
  exit 1
fi
echo "api-fuzz: no 5xx and no crash in ${BUDGET}s of fuzzing"
