#!/usr/bin/env bash
# Speed of pruned language models beside the dense one, interleaved
# (A, B, C, A, B, C, ...) so that a machine shared with other work slows
# every model alike: batch-1 generation tokens/s (rewire lm generate's own
# measure, greedy) and the seconds of `rewire lm eval --batch 64` over the
# whole validation split (loading and tokenizing included). One line per
# run: round, model, tokens/s, eval seconds.
#
#   bench/lm_pruned_speed.sh TEXT ROUNDS THREADS MODEL... [REWIRE=build/rewire]
set -euo pipefail
text=$1
rounds=$2
threads=$3
shift 3
rewire=${REWIRE:-build/rewire}
for round in $(seq 1 "$rounds"); do
    for model in "$@"; do
        speed=$("$rewire" lm generate "$model" --tokens 1000 --temperature 0 --threads "$threads" \
                2>&1 >/dev/null | grep -o '[0-9.]* tokens/s' | cut -d' ' -f1)
        start=$(date +%s.%N)
        "$rewire" lm eval "$model" --text "$text" --batch 64 --threads "$threads" >/dev/null
        end=$(date +%s.%N)
        echo "$round $model $speed $(awk "BEGIN { printf \"%.3f\", $end - $start }")"
    done
done
