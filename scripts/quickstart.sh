#!/usr/bin/env bash
# Installs what is missing, builds rewire, and trains the same
# 784-1000-1000-1000-10 MLP on Fashion-MNIST twice: 95% sparse and dense,
# then prints test accuracy and training samples/s side by side.
# EPOCHS (default 10) and THREADS (default: all cores) can be set.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${EPOCHS:-10}
THREADS=${THREADS:-$(nproc)}
scripts/install-deps.sh build data
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target rewire_cli >/dev/null
mkdir -p runs
run() { # run NAME SPARSITY
    echo "== training $1 ($EPOCHS epochs, $THREADS threads)" >&2
    build/rewire train --data fashion-mnist --hidden 1000,1000,1000 --sparsity "$2" \
        --epochs "$EPOCHS" --batch 128 --lr 0.05 --seed 1 --threads "$THREADS" \
        --out "runs/$1.safetensors" --log "runs/$1.jsonl" | grep '^result:'
}
sparse=$(run sparse95 0.95)
dense=$(run dense 0)
# Both closing lines "result: key=value ..." side by side (awk is in every Debian).
printf '%s\n%s\n' "$sparse" "$dense" | awk '
    { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[NR, kv[1]] = kv[2] } }
    END {
        printf "\n%-12s %15s %18s\n", "network", "test accuracy", "train samples/s"
        printf "%-12s %14.2f%% %18.0f\n", "95% sparse", 100 * v[1, "test_accuracy"], v[1, "train_samples_per_second"]
        printf "%-12s %14.2f%% %18.0f\n", "dense", 100 * v[2, "test_accuracy"], v[2, "train_samples_per_second"]
        printf "\nthe sparse network trains %.1fx faster (models and logs in runs/)\n",
            v[1, "train_samples_per_second"] / v[2, "train_samples_per_second"]
    }'
