#!/usr/bin/env bash
# Validation perplexity of a trained GPT pruned to 70% on average: each
# method uniform (calibration through the pruned blocks, rw_lm_prune's
# default), uniform with calibration through the dense blocks (EvoPress's
# start: its database is built so) and the EvoPress profile; with the
# seconds of each prune command. One line per model: method, how, seconds,
# rewire lm eval's JSON; the searched profiles are left in OUTDIR.
#
#   [RANGE=0.3] bench/lm_evopress_table.sh MODEL.safetensors TEXT OUTDIR [GENERATIONS] [REWIRE]
# (RANGE: --search-range, how far a map may move from the average)
set -euo pipefail
model=$1
text=$2
outdir=$3
gens=${4:-200}
rewire=${5:-build/rewire}
mkdir -p "$outdir"
common=(--sparsity 0.7 --calib-text "$text" --calib-samples 128 --seed 1 --quiet)
echo "dense - 0 $("$rewire" lm eval "$model" --text "$text" --json)"
for method in magnitude wanda sparsegpt; do
    for how in uniform uniform-dense evopress; do
        extra=()
        [ "$how" = uniform-dense ] && extra=(--calib-dense)
        [ "$how" = evopress ] && extra=(--search evopress --search-generations "$gens"
                                        --search-range "${RANGE:-0.3}"
                                        --layerwise-out "$outdir/$method-70.layerwise")
        start=$(date +%s.%N)
        "$rewire" lm prune "$model" --method "$method" "${common[@]}" "${extra[@]}" \
            -o "$outdir/$method-$how.safetensors" > "$outdir/$method-$how.log"
        end=$(date +%s.%N)
        echo "$method $how $(awk "BEGIN { print $end - $start }") \
$("$rewire" lm eval "$outdir/$method-$how.safetensors" --text "$text" --json)"
    done
done
