#!/usr/bin/env bash
# The rewire command line as a user meets it: help for every subcommand,
# exit status 2 with a clear message for bad flags, and a small
# train -> info -> eval round trip on the shipped Fashion-MNIST subset.
# Usage: cli_test.sh path/to/rewire   (run from the tests folder)
set -u
REWIRE=${1:?usage: cli_test.sh path/to/rewire}
DATA=data/fashion-small
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

check() { # check NAME EXPECTED_STATUS PATTERN -- command...
    local name=$1 want=$2 pattern=$3
    shift 4
    local out status
    out=$("$@" 2>&1)
    status=$?
    if [[ $status -eq $want ]] && grep -qE -- "$pattern" <<<"$out"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $name (status $status, wanted $want; pattern '$pattern')"
        echo "$out" | head -5 | sed 's/^/    /'
    fi
}

check "no command" 2 "usage: rewire" -- "$REWIRE"
check "top help" 0 "commands:" -- "$REWIRE" --help
check "version" 0 "^rewire [0-9]" -- "$REWIRE" --version
check "unknown command" 2 "unknown command 'fly'" -- "$REWIRE" fly
for cmd in train eval info; do
    check "$cmd --help" 0 "usage: rewire $cmd" -- "$REWIRE" $cmd --help
done
check "bench help" 0 "kernels\|train\|infer" -- "$REWIRE" bench --help
for cmd in kernels train infer; do
    check "bench $cmd --help" 0 "usage: rewire bench $cmd" -- "$REWIRE" bench $cmd --help
done
check "bench unknown" 2 "unknown benchmark 'fast'" -- "$REWIRE" bench fast
check "bench bad densities" 2 "--densities expects numbers in \(0, 1\]" -- \
    "$REWIRE" bench kernels --densities 0.5,2
check "bench bad shape" 2 "--shape expects OUTxIN" -- "$REWIRE" bench kernels --shape 10by10
check "bench train flag not for infer" 2 "unknown flag '--steps'" -- "$REWIRE" bench infer --steps 3
check "bench kernels json" 0 '^\{"bench":"kernel","op":"spmm".*"fraction":[0-9.]+' -- \
    "$REWIRE" bench kernels --shape 64x48 --densities 0.1 --batches 8 --repeats 1 --time 0 --json
check "bench kernels table" 0 "spmv +0.1 +1 " -- \
    "$REWIRE" bench kernels --shape 64x48 --densities 0.1 --batches 1 --repeats 1 --time 0
check "bench train json" 0 '"bench":"train","impl":"rewire","path":"sparse".*"samples_per_second":[0-9.]+' -- \
    "$REWIRE" bench train --hidden 32 --sparsities 0.9 --steps 2 --repeats 1 --batch 16 --json
check "bench infer table" 0 "0.0000 .* 1 .* us" -- \
    "$REWIRE" bench infer --hidden 32 --sparsities 0,0.9 --batches 1 --repeats 1 --time 0
check "unknown flag" 2 "unknown flag '--epoch'" -- "$REWIRE" train --epoch 3
check "bad integer" 2 "--epochs expects an integer, got 'ten'" -- "$REWIRE" train --epochs ten
check "int out of range" 2 "--batch must be in" -- "$REWIRE" train --batch 0
check "bad number" 2 "--lr expects a number" -- "$REWIRE" train --lr fast
check "sparsity range" 2 "--sparsity must be in" -- "$REWIRE" train --sparsity 1.5
check "bad choice" 2 "--init expects one of uniform\|er\|erk, got 'random'" -- "$REWIRE" train --init random
check "missing value" 2 "--data needs a value" -- "$REWIRE" train --data
check "flag with value" 2 "--nesterov takes no value" -- "$REWIRE" train --nesterov=1
check "bad hidden list" 2 "--hidden expects a comma-separated list" -- \
    "$REWIRE" train --data $DATA --hidden 10,,10 --epochs 1 --train-limit 100
check "missing data dir" 1 "no-such-dir" -- "$REWIRE" train --data no-such-dir
check "eval needs a model" 2 "expected one model file" -- "$REWIRE" eval
check "info missing file" 1 "nope.safetensors" -- "$REWIRE" info nope.safetensors
check "info not a model" 1 "cli_test.sh" -- "$REWIRE" info cli_test.sh

check "train" 0 "^result: test_accuracy=0\.[0-9]+" -- "$REWIRE" train --data $DATA --hidden 64,64 \
    --sparsity 0.8 --epochs 2 --batch 64 --val-split 0.1 --threads 2 --seed 3 \
    --out "$TMP/m.safetensors" --log "$TMP/run.jsonl"
check "no temp file left" 0 "^ok$" -- bash -c "test ! -e '$TMP/m.safetensors.tmp' && echo ok"
check "log has one line per epoch" 0 "^2$" -- bash -c "wc -l < '$TMP/run.jsonl' | tr -d ' '"
check "log fields" 0 '"epoch":2,"step":[0-9]+,"train_loss".*"val_accuracy":0\..*"test_accuracy":0\..*"samples_per_second".*"seconds"' -- \
    tail -n 1 "$TMP/run.jsonl"
check "info table" 0 "fc1 +sparse +64x784" -- "$REWIRE" info "$TMP/m.safetensors"
check "info json" 0 '"sparsity":0\.[0-9]+.*"layers":\[\{"name":"fc1","kind":"sparse","in":784,"out":64' -- \
    "$REWIRE" info "$TMP/m.safetensors" --json
check "eval text" 0 "accuracy [0-9.]+%  loss" -- "$REWIRE" eval "$TMP/m.safetensors" --data $DATA
check "eval json" 0 '^\{"model":.*"accuracy":0\.[0-9]+,"loss":[0-9.]+' -- \
    "$REWIRE" eval "$TMP/m.safetensors" --data $DATA --json --limit 500
check "eval on a folder without that split" 1 "t10k-images" -- \
    "$REWIRE" eval "$TMP/m.safetensors" --data "$TMP"
check "dense training" 0 "^result:.*sparsity=0\.0000" -- "$REWIRE" train --data $DATA \
    --hidden 32 --sparsity 0 --epochs 1 --train-limit 500 --test-limit 200 --quiet
check "adamw + step schedule + clipping" 0 "^result:" -- "$REWIRE" train --data $DATA --hidden 32 \
    --optimizer adamw --lr 0.001 --weight-decay 0.01 --schedule step --step-every 1 \
    --clip-norm 1 --warmup-epochs 1 --epochs 2 --train-limit 500 --test-limit 200 --quiet
check "log to a missing folder" 1 "cannot open log file" -- "$REWIRE" train --data $DATA \
    --hidden 16 --epochs 1 --train-limit 100 --log /no/such/dir/run.jsonl

check "out to a missing folder fails before training" 1 "cannot write --out /no/such/dir/m.safetensors" -- \
    "$REWIRE" train --data $DATA --hidden 16 --epochs 1 --train-limit 100 --out /no/such/dir/m.safetensors
check "no validation logs null" 0 '"val_accuracy":null' -- bash -c \
    "'$REWIRE' train --data $DATA --hidden 16 --epochs 1 --train-limit 200 --test-limit 100 --quiet --log '$TMP/nv.jsonl' >/dev/null && cat '$TMP/nv.jsonl'"

check "prune help" 0 "usage: rewire prune" -- "$REWIRE" prune --help
check "prune needs -o" 2 "expected one model file and -o OUT" -- "$REWIRE" prune "$TMP/m.safetensors" --sparsity 0.9
check "prune needs one target" 2 "exactly one of --sparsity and --nm" -- \
    "$REWIRE" prune "$TMP/m.safetensors" -o "$TMP/p.safetensors"
check "prune bad nm" 2 "--nm expects N:M" -- "$REWIRE" prune "$TMP/m.safetensors" --nm 4:2 -o "$TMP/p.safetensors"
check "prune magnitude" 0 "sparsity [0-9.]+% -> 95.00%, test accuracy" -- "$REWIRE" prune "$TMP/m.safetensors" \
    --sparsity 0.95 --eval --data $DATA -o "$TMP/p.safetensors"
check "prune wanda" 0 "-> 95\.0[0-9]%" -- "$REWIRE" prune "$TMP/m.safetensors" --sparsity 0.95 \
    --criterion wanda --calib 64 --data $DATA -o "$TMP/p.safetensors"
check "prune wanda global refused" 1 "within each output row" -- "$REWIRE" prune "$TMP/m.safetensors" \
    --sparsity 0.95 --criterion wanda --scope global --data $DATA -o "$TMP/p.safetensors"
check "prune to 2:4" 0 "saved|-> " -- "$REWIRE" prune "$TMP/m.safetensors" --nm 2:4 -o "$TMP/nm.safetensors"
check "info shows the pattern" 0 '"kind":"nm".*"pattern":"2:4"' -- "$REWIRE" info "$TMP/nm.safetensors" --json
check "eval an N:M model" 0 "accuracy [0-9.]+%" -- "$REWIRE" eval "$TMP/nm.safetensors" --data $DATA

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
