#!/usr/bin/env bash
# Crash safety of `rewire train --checkpoint`: a run that writes a
# checkpoint after every step is killed with SIGKILL at random moments
# (0-40 ms after its first checkpoint), many times, and resumed each time
# from whatever checkpoint is on disk.
# After every kill the checkpoint must load whole (`rewire info` checks the
# model and the trainer state); the step it records never goes back; and
# the run finally resumed to its end must save a model byte-identical to
# one never interrupted, and a log that, timings aside, is the same line
# for line. Three times: plain training, dynamic sparse training (SNFS:
# momentum windows, redistribution, a topology update every 6 steps), and
# N:M training from scratch (2:4 mask decay, ending after step 90: the masks
# and the mask-change counts of the log, β through its end).
# Usage: crash_test.sh path/to/rewire   (run from the tests folder)
# CRASH_KILLS (default 30; half of it for the DST and N:M runs) sets the number of
# kills (more while none has landed inside a checkpoint write), CRASH_SEED
# the random seed (printed, so a failure can be replayed),
# CRASH_SECONDS (default 90) the time each run may spend on them: a
# sanitized build on a busy machine landed only 12 of 30 in 45 s once.
set -u
REWIRE=${1:?usage: crash_test.sh path/to/rewire}
KILLS=${CRASH_KILLS:-30}
LIMIT=${CRASH_SECONDS:-90}
SEED=${CRASH_SEED:-$$}
RANDOM=$SEED
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# 1000 samples (100 go to validation) in batches of 4: 225 steps an epoch,
# 2 epochs; one thread, so a busy machine slows it down evenly. The DST
# run updates after every 6th step until the end (SNFS's schedule).
# 4 epochs of 225 steps: on a quiet machine a run advances ~20 steps
# between its first checkpoint and the kill, so 2 epochs (450 steps) could
# end after 13 kills, short of the 15 required (seen once).
PLAIN=(--data data/fashion-small --hidden 128,64 --sparsity 0.8 --epochs 4 --batch 4
       --train-limit 1000 --test-limit 200 --val-split 0.1 --optimizer adamw --lr 0.002
       --warmup-epochs 1 --seed 7 --threads 1 --quiet)
DST=("${PLAIN[@]}" --dst snfs --update-every 6)
# N:M fixes the sparsity: the plain flags but --sparsity, over 4 epochs (900
# steps), so that a quiet machine lands every kill before the run ends.
NM=(--data data/fashion-small --hidden 128,64 --epochs 4 --batch 4 --train-limit 1000
    --test-limit 200 --val-split 0.1 --optimizer adamw --lr 0.002 --warmup-epochs 1 --seed 7
    --threads 1 --quiet --nm 2:4 --nm-method decay --nm-decay-end 0.1)
fail() { echo "FAIL ($NAME): $*"; echo "crash: 0 passed, 1 failed"; exit 1; }
stamp() { stat -c '%s %y' "$1" 2>/dev/null || echo none; }
# The log without what depends on the clock.
timeless() { sed -E 's/,"(seconds|train_seconds|update_seconds|total_update_seconds|samples_per_second)":[^,}]*//g' "$1"; }

# crash_run NAME WANT ARGS...: the whole test for one set of flags, WANT kills.
crash_run() {
    NAME=$1
    local want=$2 # not KILLS: the next run's count is computed from it
    shift 2
    local ARGS=("$@")
    rm -f "$TMP"/*
    CK=$TMP/ck.safetensors

    "$REWIRE" train "${ARGS[@]}" --out "$TMP/ref.safetensors" --log "$TMP/ref.jsonl" >/dev/null ||
        fail "reference run"

    kills=0 torn=0 finished=0 last_step=-1 runs=0
    start=$SECONDS
    # Past WANT kills while none has landed inside a checkpoint write yet:
    # under ASan a write is a small part of a step, and 0 of 15 kills landed
    # in one in about one nm run out of five.
    while (( (kills < want || torn == 0) && SECONDS - start < LIMIT )); do
        resume=()
        [[ -e $CK ]] && resume=(--resume "$CK")
        before=$(stamp "$CK") tmp_before=$(stamp "$CK.tmp")
        "$REWIRE" train "${ARGS[@]}" "${resume[@]}" --checkpoint "$CK" --checkpoint-every 1 \
            --out "$TMP/final.safetensors" --log "$TMP/run.jsonl" >/dev/null 2>"$TMP/err" &
        pid=$!
        runs=$((runs + 1))
        # Once this run has written a checkpoint (start-up takes longer on a
        # slow or sanitized build), kill it 0 to 40 ms later: inside a write
        # or between two.
        for ((w = 0; w < 2000; w++)); do
            [[ $(stamp "$CK") != "$before" ]] && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.01
        done
        sleep "$(printf '0.%03d' $((RANDOM % 41)))"
        if kill -KILL "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null
            kills=$((kills + 1))
            # A .tmp this run wrote and never renamed: killed inside a write.
            [[ -e $CK.tmp && $(stamp "$CK.tmp") != "$tmp_before" ]] && torn=$((torn + 1))
        else
            wait "$pid" || fail "run $runs exited with an error: $(cat "$TMP/err")"
            finished=1
            break
        fi
        [[ -e $CK ]] || continue
        info=$("$REWIRE" info "$CK" 2>&1) || fail "after kill $kills the checkpoint does not load: $info"
        step=$(sed -n 's/^checkpoint: .* step \([0-9]*\),.*/\1/p' <<<"$info")
        [[ -n $step ]] || fail "after kill $kills, rewire info shows no checkpoint line: $info"
        (( step >= last_step )) || fail "after kill $kills the checkpoint went back from step $last_step to $step"
        last_step=$step
    done
    echo "crash ($NAME): seed $SEED, $kills kills in $((SECONDS - start)) s over $runs runs, $torn of them" \
         "left a half-written $(basename "$CK").tmp; last checkpoint at step $last_step"
    (( kills >= want / 2 )) || fail "only $kills kills landed before the run ended"
    (( torn >= 1 )) || fail "no kill landed inside a checkpoint write"
    if (( ! finished )); then
        "$REWIRE" train "${ARGS[@]}" --resume "$CK" --checkpoint "$CK" --checkpoint-every 1 \
            --out "$TMP/final.safetensors" --log "$TMP/run.jsonl" >/dev/null || fail "the final resume failed"
    fi
    cmp "$TMP/ref.safetensors" "$TMP/final.safetensors" ||
        fail "the resumed model differs from the uninterrupted one"
    timeless "$TMP/ref.jsonl" >"$TMP/ref.txt"
    timeless "$TMP/run.jsonl" >"$TMP/run.txt"
    cmp -s "$TMP/ref.txt" "$TMP/run.txt" ||
        fail "the resumed run's log differs from the uninterrupted one's: $(diff "$TMP/ref.txt" "$TMP/run.txt" | head -4)"
}

crash_run plain "$KILLS" "${PLAIN[@]}"
crash_run dst $(( (KILLS + 1) / 2 )) "${DST[@]}"
crash_run nm $(( (KILLS + 1) / 2 )) "${NM[@]}"
echo "crash: 1 passed, 0 failed"
