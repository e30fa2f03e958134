#!/usr/bin/env bash
# Installs what is missing, builds rewire with its tests and runs them with
# ctest, then the Python package's tests (pytest, python/tests) against that
# build; then does the same C tests under AddressSanitizer + UndefinedBehaviorSanitizer;
# then a fuzz smoke run: every libFuzzer harness for FUZZ_SECONDS (default
# 60) seconds (scripts/fuzz.sh). SANITIZE=0 skips the sanitizer pass, FUZZ=0
# the fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build test python
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DREWIRE_TESTS=ON >/dev/null
cmake --build build -j "$jobs" >/dev/null
(cd build && ctest --output-on-failure -j "$jobs")
# Which kernel tables the twin tests ran on this CPU (from ctest's log).
echo "== kernel tables checked by test_kernels on this CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
grep -E "^(twins against scalar|avx512 against avx2|active table)" build/Testing/Temporary/LastTest.log || true
echo "== the Python package (pytest python/tests, over build/librewire.so)"
# Debian's interpreter, which has the packages install-deps.sh installed.
REWIRE_CACHE_DIR=build/test-cache PYTHONPATH=python "${PYTHON:-/usr/bin/python3}" -m pytest -q -p no:cacheprovider python/tests
if [[ ${SANITIZE:-1} != 0 ]]; then
    echo "== the same tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DREWIRE_SANITIZE=ON >/dev/null
    cmake --build build-sanitize -j "$jobs" >/dev/null
    (cd build-sanitize && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j "$jobs" -E install)
fi
if [[ ${FUZZ:-1} != 0 ]]; then
    echo "== fuzz smoke run (scripts/fuzz.sh, ${FUZZ_SECONDS:-60}s per harness)"
    scripts/fuzz.sh
fi
