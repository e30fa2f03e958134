#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan, and runs each for FUZZ_SECONDS seconds (default 60), one after the
# other, starting from the seed corpora in tests/fuzz/corpus/<harness>/.
# New inputs go to build-fuzz/corpus/<harness>/ (the repository's seeds are
# left alone); a crash, leak or sanitizer report stops the script with the
# reproducer in build-fuzz/artifacts/. Usage:
#   scripts/fuzz.sh                        # every harness, 60 s each (CI smoke run)
#   FUZZ_SECONDS=600 scripts/fuzz.sh fuzz_model   # one harness, 10 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build fuzz
seconds=${FUZZ_SECONDS:-60}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREWIRE_FUZZ=ON \
    -DREWIRE_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" >/dev/null
harnesses=("$@")
if [[ ${#harnesses[@]} -eq 0 ]]; then
    for src in tests/fuzz/fuzz_*.c; do harnesses+=("$(basename "$src" .c)"); done
fi
mkdir -p build-fuzz/artifacts
for h in "${harnesses[@]}"; do
    mkdir -p "build-fuzz/corpus/$h"
    case $h in
    fuzz_idx | fuzz_idx_cache) extra=() ;;
    fuzz_vocab | fuzz_gpt2_config) extra=(-dict=tests/fuzz/text.dict) ;;
    fuzz_csv) extra=(-dict=tests/fuzz/csv.dict) ;;
    fuzz_npy) extra=(-dict=tests/fuzz/npy.dict) ;;
    *) extra=(-dict=tests/fuzz/safetensors.dict) ;;
    esac
    # fuzz_note's target prints its refusals; libFuzzer keeps its own output.
    [[ $h == fuzz_note ]] && extra+=(-close_fd_mask=2)
    echo "== $h for ${seconds}s"
    # detect_leaks: a leak on any error path fails the run like a crash.
    set +e
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
        "build-fuzz/tests/fuzz/$h" -max_total_time="$seconds" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 -max_len=8192 "${extra[@]}" \
        -artifact_prefix="build-fuzz/artifacts/$h-" \
        "build-fuzz/corpus/$h" "tests/fuzz/corpus/$h" >"build-fuzz/$h.log" 2>&1
    status=$?
    set -e
    grep -E "^(#[0-9]+[[:space:]]+DONE|stat::|INFO: (seed|Loaded)|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)|Done [0-9]+ runs" \
        "build-fuzz/$h.log" || true
    if [[ $status -ne 0 ]]; then
        tail -n 40 "build-fuzz/$h.log" >&2
        echo "fuzz.sh: $h failed (status $status); full log build-fuzz/$h.log, reproducer in build-fuzz/artifacts/" >&2
        exit 1
    fi
done
echo "fuzz: ${#harnesses[@]} passed, 0 failed"
