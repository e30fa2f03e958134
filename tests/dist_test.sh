#!/usr/bin/env bash
# Data-parallel training over MPI against one process (docs/distributed.md):
# `mpirun -np 2` trains the same model as one process with the same global
# batch. For RigL (growth from the gathered global batch's gradient), SET
# (random growth from identically seeded streams), SNFS (momentum windows
# of gathered batches), Hebbian growth (activation windows), input-level
# DST, GMP (gradual magnitude pruning) and N:M training
# (2:4 masks from the weights): the topology hash of every update in the
# two logs is the same, the final models hold the same patterns and values
# within 1e-5, and the test accuracies agree. Then a kill -9 of one process
# mid-run: the other ends within seconds with a message naming it, the
# checkpoint stays whole, and one process and two resume it to the end.
# Usage: dist_test.sh path/to/rewire path/to/model_diff [path/to/mpirun]   (from the tests folder)
set -u
REWIRE=${1:?usage: dist_test.sh path/to/rewire path/to/model_diff [path/to/mpirun]}
DIFF=${2:?usage: dist_test.sh path/to/rewire path/to/model_diff [path/to/mpirun]}
LAUNCHER=${3:-mpirun}
if ! command -v "$LAUNCHER" >/dev/null; then
    echo "FAIL: no $LAUNCHER to start processes with (apt-get install openmpi-bin)"
    exit 1
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
MPIRUN=("$LAUNCHER" -np 2 --oversubscribe)
[[ $(id -u) -eq 0 ]] && MPIRUN+=(--allow-run-as-root)
passed=0
failed=0
fail() { local name=$1; shift; failed=$((failed + 1)); echo "FAIL ($name): $*"; }

BASE=(--data data/fashion-small --hidden 64,32 --epochs 2 --batch 50 --train-limit 2000
      --test-limit 500 --seed 5 --threads 1 --quiet)
hashes() { grep -o '"topology_hash":"[0-9a-f]*"' "$1"; }
accuracy() { grep -o 'test_accuracy=[0-9.]*' "$1"; }

# same NAME FLAGS...: one process and two, compared (CMD: train, or lm train).
CMD=(train)
same() {
    local name=$1
    shift
    "$REWIRE" "${CMD[@]}" "$@" --out "$TMP/$name.1.st" --log "$TMP/$name.1.jsonl" \
        >"$TMP/$name.1.out" 2>&1 || { fail "$name" "one process: $(tail -2 "$TMP/$name.1.out")"; return; }
    "${MPIRUN[@]}" "$REWIRE" "${CMD[@]}" "$@" --out "$TMP/$name.2.st" \
        --log "$TMP/$name.2.jsonl" >"$TMP/$name.2.out" 2>&1 ||
        { fail "$name" "two processes: $(tail -3 "$TMP/$name.2.out")"; return; }
    local h1 h2 d
    h1=$(hashes "$TMP/$name.1.jsonl")
    h2=$(hashes "$TMP/$name.2.jsonl")
    if [[ "$h1" != "$h2" ]]; then
        fail "$name" "topology hashes differ: $(diff <(echo "$h1") <(echo "$h2") | head -3)"
        return
    fi
    if ! d=$("$DIFF" "$TMP/$name.1.st" "$TMP/$name.2.st" 1e-5); then
        fail "$name" "models differ: $d"
        return
    fi
    echo "$name: $(echo "$h1" | grep -c .) updates with equal topology hashes; $d;" \
         "one process $(accuracy "$TMP/$name.1.out"), two $(accuracy "$TMP/$name.2.out")"
    if [[ "$(accuracy "$TMP/$name.1.out")" != "$(accuracy "$TMP/$name.2.out")" ]]; then
        fail "$name" "the closing lines differ"
        return
    fi
    passed=$((passed + 1))
}

same rigl "${BASE[@]}" --sparsity 0.9 --dst rigl --update-every 10
same set "${BASE[@]}" --sparsity 0.9 --dst set --update-every 10
same snfs "${BASE[@]}" --sparsity 0.9 --dst snfs --update-every 10
same hebbian "${BASE[@]}" --sparsity 0.9 --dst hebbian --update-every 10
same inputs "${BASE[@]}" --sparsity 0.9 --dst rigl --update-every 10 --input-budget 300
same gmp "${BASE[@]}" --sparsity 0.9 --prune gmp --update-every 10
same nm "${BASE[@]}" --nm 2:4
# Uneven parts: batches of 25 (12 and 13 columns); then a last batch of one
# sample (2001 = 80 x 25 + 1), where process 0 trains on no column at all.
# (RigL on the latter grows one other weight than one process does at one
# update of 17: two gradient scores within float rounding of each other,
# summed in another order. The processes still agree with each other.)
same uneven "${BASE[@]}" --sparsity 0.9 --dst rigl --update-every 7 --batch 25
same empty "${BASE[@]}" --sparsity 0.9 --dst set --update-every 7 --batch 25 --train-limit 2001
# Hybrid: two processes x 2 OpenMP threads against one process x 2 threads.
same hybrid "${BASE[@]}" --hidden 512,256 --sparsity 0.9 --dst rigl --update-every 10 --threads 2
# A language model: each process takes 2 of the 4 sequences of every batch.
LMTEXT=$TMP/lm.txt
for i in $(seq 1 300); do echo "the rain in spain falls mainly on the plain $i"; done >"$LMTEXT"
CMD=(lm train)
accuracy() { grep -o 'val_loss=[0-9.]*' "$1"; }
same lm --text "$LMTEXT" --layers 1 --heads 2 --dim 16 --context 16 --batch 4 --eval-every 5 \
    --eval-batches 2 --warmup 2 --steps 30 --sparsity 0.8 --dst rigl --update-every 5 --threads 1 \
    --quiet
accuracy() { grep -o 'test_accuracy=[0-9.]*' "$1"; }
# Experts route each process's own tokens: the k-means gate and DST inside
# experts are refused over two processes, naming the layer; the softmax
# gate with static experts trains the same model as one process.
for moe in "--moe-gate kmeans" "--sparsity 0.8 --dst rigl --update-every 5"; do
    # shellcheck disable=SC2086
    if "${MPIRUN[@]}" "$REWIRE" lm train --text "$LMTEXT" --layers 1 --heads 2 --dim 16 --context 16 \
        --batch 4 --steps 3 --quiet --moe-experts 2 $moe >"$TMP/moe.out" 2>&1; then
        fail moe-refused "two processes trained with $moe"
    elif ! grep -q "layer blocks.0.moe: .* does not train over several processes" "$TMP/moe.out"; then
        fail moe-refused "no message naming the layer: $(grep rewire "$TMP/moe.out" | head -2)"
    else
        passed=$((passed + 1))
    fi
done
CMD=(lm train)
accuracy() { grep -o 'val_loss=[0-9.]*' "$1"; }
same moe --text "$LMTEXT" --layers 1 --heads 2 --dim 16 --context 16 --batch 4 --eval-every 5 \
    --eval-batches 2 --warmup 2 --steps 20 --moe-experts 2 --moe-top-k 2 --threads 1 --quiet
accuracy() { grep -o 'test_accuracy=[0-9.]*' "$1"; }

# Kill -9 of process 1 mid-run: mpirun ends the other within seconds, naming it.
KILLRUN=(--data data/fashion-small --hidden 256,128 --epochs 6 --batch 10 --train-limit 2000
         --test-limit 500 --seed 5 --threads 1 --quiet --sparsity 0.9 --dst rigl
         --update-every 20)
"${MPIRUN[@]}" "$REWIRE" train "${KILLRUN[@]}" --checkpoint "$TMP/ck.st" --checkpoint-every 20 \
    --out "$TMP/killed.st" >"$TMP/kill.out" 2>&1 &
mpid=$!
for _ in $(seq 200); do [[ -s "$TMP/ck.st" ]] && break; sleep 0.1; done
victim=$(pgrep -f -P "$mpid" -- "rewire train" | tail -1)
if [[ ! -s "$TMP/ck.st" || -z "$victim" ]]; then
    fail kill "no checkpoint or no process to kill: $(tail -3 "$TMP/kill.out")"
    kill "$mpid" 2>/dev/null
else
    t0=$(date +%s.%N)
    kill -9 "$victim"
    wait "$mpid"
    status=$?
    secs=$(echo "$(date +%s.%N) - $t0" | bc)
    if [[ $status -eq 0 ]]; then
        fail kill "mpirun exited 0 after a process was killed"
    elif ! grep -qiE "signal 9|killed" "$TMP/kill.out"; then
        fail kill "no message naming the killed process: $(tail -5 "$TMP/kill.out")"
    elif (($(echo "$secs > 10" | bc))); then
        fail kill "the run took ${secs}s to end after the kill"
    elif [[ -e "$TMP/killed.st" ]]; then
        fail kill "a model was written by a run that did not finish"
    elif ! "$REWIRE" info "$TMP/ck.st" >/dev/null 2>&1; then
        fail kill "the checkpoint does not load after the kill"
    elif ! "$REWIRE" train --resume "$TMP/ck.st" --out "$TMP/resumed.st" >"$TMP/resume.out" 2>&1; then
        fail kill "one process cannot resume: $(tail -2 "$TMP/resume.out")"
    elif ! "${MPIRUN[@]}" "$REWIRE" train --resume "$TMP/ck.st" --out "$TMP/resumed2.st" \
            >"$TMP/resume2.out" 2>&1; then
        fail kill "two processes cannot resume: $(tail -2 "$TMP/resume2.out")"
    elif ! awk -v a="$(accuracy "$TMP/resume.out" | cut -d= -f2)" \
            -v b="$(accuracy "$TMP/resume2.out" | cut -d= -f2)" \
            'BEGIN { d = a - b; exit !(a > 0.5 && (d < 0 ? -d : d) <= 0.02) }'; then
        # Not the weights within 1e-5: over the hundreds of RigL updates after
        # the kill, scores within rounding of each other can rank the other
        # way (docs/distributed.md), and the kill lands at a different step
        # every time.
        fail kill "one and two processes resumed to accuracies more than 0.02 apart:" \
            "$(accuracy "$TMP/resume.out"), $(accuracy "$TMP/resume2.out")"
    else
        d=$("$DIFF" "$TMP/resumed.st" "$TMP/resumed2.st" 1)
        echo "kill: the run ended ${secs}s after kill -9 of pid $victim: $(grep -iE "signal 9|killed" "$TMP/kill.out" | head -1)"
        echo "kill: resumed by one process: $(accuracy "$TMP/resume.out"), by two:" \
             "$(accuracy "$TMP/resume2.out"); $d"
        passed=$((passed + 1))
    fi
fi

echo "dist: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
