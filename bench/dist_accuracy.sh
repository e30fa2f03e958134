#!/usr/bin/env bash
# Must-show 2 of docs/distributed.md: RigL, SET, GMP and N:M trained by one
# process and by two (mpirun -np 2, the same global batch of 128), seeds 1-3,
# on 20,000 Fashion-MNIST training samples (784-300-100-10, 5 epochs), tested
# on the 10,000 test samples. Prints "METHOD SEED PROCESSES result-line";
# the topology hash check runs at every update of the two-process runs.
# Usage: bench/dist_accuracy.sh > results.txt
set -u
REWIRE=${REWIRE:-build/rewire}
MPIRUN=(mpirun -np 2 --oversubscribe --bind-to none)
[[ $(id -u) -eq 0 ]] && MPIRUN+=(--allow-run-as-root)
BASE=(--data fashion-mnist --hidden 300,100 --epochs 5 --batch 128 --train-limit 20000
      --threads 1 --quiet)
for seed in 1 2 3; do
    for method in rigl set gmp nm; do
        case $method in
        rigl) flags=(--sparsity 0.95 --dst rigl) ;;
        set) flags=(--sparsity 0.95 --dst set) ;;
        gmp) flags=(--sparsity 0.95 --prune gmp) ;;
        nm) flags=(--nm 2:4) ;;
        esac
        for np in 1 2; do
            if [[ $np == 1 ]]; then
                out=$("$REWIRE" train "${BASE[@]}" "${flags[@]}" --seed "$seed" 2>&1)
            else
                out=$("${MPIRUN[@]}" "$REWIRE" train "${BASE[@]}" "${flags[@]}" --seed "$seed" 2>&1)
            fi
            echo "$method $seed $np $(grep '^result:' <<<"$out" || tail -1 <<<"$out")"
        done
    done
done
