#!/usr/bin/env bash
# `make fuzz`: libFuzzer on the packet decoder and the handshake, then schemathesis on the
# REST API (logged in, against a recording recorder), each for a bounded time. libFuzzer is
# built in its own folder (.build-fuzz) so the sanitizer flags do not touch the normal build.
set -euo pipefail
SECONDS_TO_RUN=${FUZZ_SECONDS:-120}
mkdir -p fuzz-out/corpus
XT_FUZZ=1 swift build --scratch-path .build-fuzz -c debug --product XTFuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
.build-fuzz/debug/XTFuzz fuzz-out/corpus -max_total_time="$SECONDS_TO_RUN" -max_len=2048 -print_final_stats=1 \
  -artifact_prefix=fuzz-out/ 2>&1 | tail -20
echo "fuzz: no crash in ${SECONDS_TO_RUN}s (corpus in fuzz-out/corpus)"
swift build --product xt
bash scripts/api-fuzz.sh .build/debug/xt "${FUZZ_API_SECONDS:-300}"
