#!/usr/bin/env bash
# The quality table of the README's "Sparse attention (--attention)": GPTs
# of 4 layers, 4 heads, dim 128 trained at context 512 on TEXT (Tiny
# Shakespeare) with each attention pattern, one thread, one run at a time,
# every pattern's first seed before any second seed (so a stopped run still
# leaves a table); each seed's dense model is also evaluated with the sparse
# patterns and with SparseD's blocks at each KEEP.
#
#   bench/attention_quality.sh OUTDIR TEXT [REWIRE]
#   SEEDS="1 2 3" SPECS="dense block-topk:32,2 ..." EVAL_SPECS=... KEEPS="0.5 0.6" (environment)
#
# Appends one line per result to OUTDIR/raw.txt, "KIND SEED SPEC JSON":
#   trained  S SPEC  rewire lm eval --json of the model trained with SPEC
#   trainlog S SPEC  the last line of that run's --log (its attention_density)
#   densevs  S SPEC  the dense model of seed S evaluated with --attention SPEC
#   sparsed  S sparsed:32,KEEP  the dense model after rewire lm sparsed, evaluated
# A result already in raw.txt is not recomputed, so the script resumes where
# it stopped and takes more KEEPS on a second call. bench/attention_quality_table.py
# turns raw.txt into the table.
set -euo pipefail
out=$1
text=$2
rewire=${3:-build/rewire}
seeds=${SEEDS:-1 2 3}
specs=${SPECS:-dense block-topk:32,2 hip:32,2 window:80}
eval_specs=${EVAL_SPECS:-block-topk:32,2 hip:32,2 window:80}
keeps=${KEEPS:-0.3 0.4 0.5}
steps=${STEPS:-1000}
mkdir -p "$out"
raw=$out/raw.txt
touch "$raw"

have() { grep -q "^$1 $2 $3 " "$raw"; }
name() { echo "s$1-$(echo "$2" | tr ':,' '--')"; }

train() { # seed spec
    local s=$1 spec=$2 n
    n=$(name "$s" "$spec")
    if ! have trained "$s" "$spec"; then
        echo "$(date -u +%T) train seed $s $spec" >&2
        rm -f "$out/$n.jsonl"
        "$rewire" lm train --text "$text" --context 512 --layers 4 --heads 4 --dim 128 \
            --batch 4 --steps "$steps" --warmup 50 --threads 1 --seed "$s" --attention "$spec" \
            --out "$out/$n.safetensors" --log "$out/$n.jsonl" >"$out/$n.out" 2>"$out/$n.err"
        echo "trainlog $s $spec $(grep '"event":"lm"' "$out/$n.jsonl" | tail -n 1)" >>"$raw"
        echo "trained $s $spec $("$rewire" lm eval "$out/$n.safetensors" --text "$text" \
            --threads 1 --json)" >>"$raw"
    fi
}

dense_evals() { # seed
    local s=$1 spec keep d
    d=$out/$(name "$s" dense).safetensors
    [ -f "$d" ] || return 0
    for spec in $eval_specs; do
        have densevs "$s" "$spec" && continue
        echo "densevs $s $spec $("$rewire" lm eval "$d" --text "$text" --attention "$spec" \
            --threads 1 --json)" >>"$raw"
    done
    for keep in $keeps; do
        spec=sparsed:32,$keep
        have sparsed "$s" "$spec" && continue
        echo "$(date -u +%T) sparsed seed $s $spec" >&2
        "$rewire" lm sparsed "$d" --calib-text "$text" --attention "$spec" --calib-samples 16 \
            --threads 1 -o "$out/$(name "$s" "$spec").safetensors" \
            >"$out/$(name "$s" "$spec").out" 2>&1
        echo "sparsed $s $spec $("$rewire" lm eval "$out/$(name "$s" "$spec").safetensors" \
            --text "$text" --threads 1 --json)" >>"$raw"
    done
}

# A seed's dense model is evaluated sparse as soon as it is trained, before
# the seed's sparse runs, so an early stop still pairs it with its evals.
for s in $seeds; do
    for spec in $specs; do
        train "$s" "$spec"
        [ "$spec" = dense ] && dense_evals "$s"
    done
done
echo "$(date -u +%T) done" >&2
