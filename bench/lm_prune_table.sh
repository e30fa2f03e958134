#!/usr/bin/env bash
# Validation perplexity of a trained GPT pruned after training by each
# method of `rewire lm prune` at 50%, 60%, 70% and 2:4 (the table of the
# README's "Pruning a trained model"), and the seconds of each prune
# command. One line per model: method, target, seconds, rewire lm eval's JSON.
#
#   bench/lm_prune_table.sh MODEL.safetensors TEXT [REWIRE]
set -euo pipefail
model=$1
text=$2
rewire=${3:-build/rewire}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "dense 0 $("$rewire" lm eval "$model" --text "$text" --json)"
for target in "--sparsity 0.5" "--sparsity 0.6" "--sparsity 0.7" "--nm 2:4"; do
    for method in magnitude wanda sparsegpt dsnot; do
        start=$(date +%s.%N)
        # shellcheck disable=SC2086
        "$rewire" lm prune "$model" --method $method $target --calib-text "$text" \
            --calib-samples 128 --quiet -o "$out/pruned.safetensors" >/dev/null
        end=$(date +%s.%N)
        echo "$method ${target#--} $(awk "BEGIN { print $end - $start }") \
$("$rewire" lm eval "$out/pruned.safetensors" --text "$text" --json)"
    done
done
