#!/usr/bin/env bash
# Data-parallel training speed (docs/distributed.md): interleaved rounds of
# one process x 1 thread, two processes x 1 thread (mpirun) and, for
# reference, one process x 2 threads, training the same model on the same
# global batches. Prints each run's closing line prefixed by round and
# configuration; bench/dist_table.py turns them into the table.
# Usage: bench/dist_speed.sh [ROUNDS] [SPARSITY] [EXTRA FLAGS...] > results.txt
set -u
ROUNDS=${1:-5}
SPARSITY=${2:-0.95}
shift 2 2>/dev/null
REWIRE=${REWIRE:-build/rewire}
MPIRUN=(mpirun -np 2 --oversubscribe --bind-to none)
[[ $(id -u) -eq 0 ]] && MPIRUN+=(--allow-run-as-root)
FLAGS=(--data fashion-mnist --hidden 1000,1000,1000 --sparsity "$SPARSITY" --epochs 1
       --batch 128 --train-limit 20000 --test-limit 1000 --seed 1 --quiet "$@")
for round in $(seq "$ROUNDS"); do
    for who in p1t1 p2t1 p1t2; do
        case $who in
        p1t1) out=$("$REWIRE" train "${FLAGS[@]}" --threads 1) ;;
        p2t1) out=$("${MPIRUN[@]}" "$REWIRE" train "${FLAGS[@]}" --threads 1) ;;
        p1t2) out=$("$REWIRE" train "${FLAGS[@]}" --threads 2) ;;
        esac
        echo "$round $who sparsity=$SPARSITY $(grep '^result:' <<<"$out")"
    done
done
