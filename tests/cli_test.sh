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
for cmd in train eval info plot; do
    check "$cmd --help" 0 "usage: rewire $cmd" -- "$REWIRE" $cmd --help
done
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

# Dynamic sparse training.
check "bad dst" 2 "--dst expects one of static\|set\|rigl" -- "$REWIRE" train --dst magic
check "drop needs a fraction" 2 "--drop and --grow need --drop-fraction" -- \
    "$REWIRE" train --data $DATA --grow gradient --epochs 1
check "initial sparsity below target" 2 "--initial-sparsity 0.95 must be below --sparsity 0.9" -- \
    "$REWIRE" train --data $DATA --sparsity 0.9 --initial-sparsity 0.95
check "rigl" 0 "^result:.*sparsity=0\.9000 update_seconds=[0-9.]+ updates=[1-9]" -- "$REWIRE" train \
    --data $DATA --hidden 64,64 --sparsity 0.9 --dst rigl --update-every 5 --epochs 2 \
    --train-limit 600 --test-limit 200 --quiet --log "$TMP/rigl.jsonl"
check "topology log line" 0 '^\{"event":"topology","update":1,"step":5,"epoch":1,"drop_fraction":0\.[0-9]+,"dropped":\[[0-9]+,[0-9]+,[0-9]+\],"grown":\[[0-9]+,[0-9]+,[0-9]+\],"nonzeros":\[.*"density":\[.*"itop_rate":0\.[0-9]+,"sad":[0-9]+,"sad_rate":.*"dead_neurons":\[[0-9]+,[0-9]+\],"unconnected_inputs":[0-9]+,"update_seconds":' -- \
    head -n 1 "$TMP/rigl.jsonl"
check "epoch line has update seconds" 0 '"update_seconds":[0-9.e-]+,"sparsity":0\.9' -- \
    bash -c "grep '\"epoch\":2,' '$TMP/rigl.jsonl'"
check "criteria combine freely" 0 "^result:.*sparsity=0\.9000" -- "$REWIRE" train --data $DATA \
    --hidden 32 --sparsity 0.9 --drop set --grow hebbian --drop-fraction 0.2 --update-every 4 \
    --window 2 --drop-schedule cosine --update-until 0.5 --epochs 1 --train-limit 400 \
    --test-limit 100 --quiet
check "granet reaches the target" 0 "^result:.*sparsity=0\.9000" -- "$REWIRE" train --data $DATA \
    --hidden 32 --sparsity 0.9 --dst granet --update-every 2 --epochs 2 --train-limit 400 \
    --test-limit 100 --quiet
check "granet warns when it cannot" 0 "gradual pruning ended at sparsity 0\.5" -- "$REWIRE" train \
    --data $DATA --hidden 32 --sparsity 0.9 --dst granet --epochs 1 --train-limit 400 \
    --test-limit 100 --quiet

# Plots.
check "plot help" 0 "usage: rewire plot" -- "$REWIRE" plot --help
check "plot needs -o" 2 "-o FILE is required" -- "$REWIRE" plot "$TMP/rigl.jsonl"
check "plot curves" 0 "curves.svg: 2 runs" -- "$REWIRE" plot "$TMP/rigl.jsonl" "$TMP/run.jsonl" \
    -o "$TMP/curves.svg" --title "a & b"
check "curves are SVG with one line per run and loss" 0 "^6$" -- bash -c \
    "grep -c '<polyline' '$TMP/curves.svg'"
check "title escaped" 0 "a &amp; b" -- cat "$TMP/curves.svg"
check "curves need .svg" 2 "must end in .svg" -- "$REWIRE" plot "$TMP/rigl.jsonl" -o "$TMP/c.png"
check "plot a file that is not JSONL" 1 "line 1 is not a JSON object" -- \
    "$REWIRE" plot cli_test.sh -o "$TMP/x.svg"
check "plot a log without epoch lines" 1 "holds no epoch lines" -- bash -c \
    "grep '\"event\"' '$TMP/rigl.jsonl' > '$TMP/topo.jsonl'; '$REWIRE' plot '$TMP/topo.jsonl' -o '$TMP/x.svg'"
check "connectivity png" 0 "map.png: fc1 connections per input: min [0-9]+, max [0-9]+" -- \
    "$REWIRE" plot --connectivity "$TMP/m.safetensors" -o "$TMP/map.png"
check "png signature" 0 "PNG" -- head -c 4 "$TMP/map.png"
check "connectivity svg" 0 "map.svg" -- "$REWIRE" plot --connectivity "$TMP/m.safetensors" \
    -o "$TMP/map.svg" --scale 4
check "connectivity width must divide the inputs" 2 "784 inputs do not make rows of --width 13" -- \
    "$REWIRE" plot --connectivity "$TMP/m.safetensors" --width 13 -o "$TMP/w.png"

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
