#!/usr/bin/env bash
# Files written by an earlier rewire (main at b514b8d, before the layer
# interface) still work (ctest "compat"): tests/data/compat holds three
# model files (sparse after RigL, dense, N:M 2:4), what `rewire eval --json`
# printed for each then, and a checkpoint of a RigL run stopped in its
# second epoch. Each model evaluates to the same accuracy (and loss within
# 1e-6; the kernels' summation order may differ on another CPU); the
# checkpoint resumes and ends exactly where the same run started afresh
# by this binary ends. Usage: compat_test.sh REWIRE (from tests/).
set -uo pipefail
REWIRE=$1
D=data/fashion-small
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
checks=0

# field NAME JSON: the number after "NAME": in a one-line JSON object.
field() { sed -E "s/.*\"$1\":([-0-9.eE+]+).*/\1/" <<<"$2"; }

for m in rigl dense nm24; do
    checks=$((checks + 1))
    want=$(cat "data/compat/$m.eval.json")
    got=$("$REWIRE" eval "data/compat/$m.safetensors" --data "$D" --json 2>"$tmp/err") || {
        echo "compat: $m: rewire eval failed: $(cat "$tmp/err")"
        failures=$((failures + 1))
        continue
    }
    wa=$(field accuracy "$want") ga=$(field accuracy "$got")
    wl=$(field loss "$want") gl=$(field loss "$got")
    if [[ $wa != "$ga" ]] || ! awk -v a="$wl" -v b="$gl" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-6 * (a < 0 ? -a : a)) }'; then
        echo "compat: $m: accuracy $ga and loss $gl, the earlier rewire printed $wa and $wl"
        failures=$((failures + 1))
    fi
done

# The checkpoint's flags are the run's; train it afresh with them. Its
# first part ran on the AVX2 kernels, which the AVX-512 ones match bit for
# bit only at batches of 128 columns: both runs use AVX2 (every x86-64 CPU
# this project runs on has it).
export REWIRE_KERNELS=avx2
checks=$((checks + 1))
"$REWIRE" train --data "$D" --hidden 64,32 --sparsity 0.9 --dst rigl --update-every 20 --epochs 3 \
    --batch 32 --threads 1 --quiet --out "$tmp/afresh.safetensors" >/dev/null 2>"$tmp/err" &&
    cp data/compat/rigl-run.ckpt "$tmp/run.ckpt" &&
    "$REWIRE" train --resume "$tmp/run.ckpt" --threads 1 --quiet --out "$tmp/resumed.safetensors" \
        >/dev/null 2>>"$tmp/err"
status=$?
if [[ $status -ne 0 ]]; then
    echo "compat: training afresh or resuming the earlier checkpoint failed: $(cat "$tmp/err")"
    failures=$((failures + 1))
elif ! cmp -s "$tmp/afresh.safetensors" "$tmp/resumed.safetensors"; then
    echo "compat: the run resumed from the earlier checkpoint ends elsewhere than the run afresh"
    failures=$((failures + 1))
fi

echo "compat: $checks checks, $failures failed"
[[ $failures -eq 0 ]]
