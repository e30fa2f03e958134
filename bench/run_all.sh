#!/usr/bin/env bash
# Runs rewire's benchmarks and the PyTorch yardsticks side by side, round
# after round (so a busy machine slows both alike), appends every JSON row
# to $OUT, then prints the Markdown tables of bench/tabulate.py.
#
#   ROUNDS=3 THREADS=2 OUT=bench/results.jsonl bench/run_all.sh
#
# Needs a built rewire ($REWIRE, default build/rewire) and Debian's
# python3-torch for /usr/bin/python3 (scripts/install-deps.sh bench).
set -euo pipefail
cd "$(dirname "$0")/.."
REWIRE=${REWIRE:-build/rewire}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
OUT=${OUT:-bench/results.jsonl}
NET=${NET:-1000,1000,1000}
SPARSITIES=${SPARSITIES:-0,0.95,0.99}
KERNELS=${KERNELS:-1}
PY=/usr/bin/python3
if ! $PY -c 'import torch' 2>/dev/null; then
    echo "bench/run_all.sh: PyTorch is not installed for $PY; run scripts/install-deps.sh bench" >&2
    exit 1
fi
# The rewire command sets libgomp's spin to 2500 unless told otherwise (see
# src/cli/main.c); PyTorch gets the same OpenMP runtime setting, so neither
# side is favoured on a busy machine. TORCH_GOMP_SPINCOUNT= (empty) leaves
# PyTorch on libgomp's default.
TORCH_GOMP_SPINCOUNT=${TORCH_GOMP_SPINCOUNT-2500}
if [[ -n $TORCH_GOMP_SPINCOUNT ]]; then
    PY="env GOMP_SPINCOUNT=$TORCH_GOMP_SPINCOUNT /usr/bin/python3"
fi

# OpenBLAS 0.3.21 does not know Zen 5 and these machines set
# OPENBLAS_CORETYPE=Haswell (AVX2 kernels); where the CPU has AVX-512 both
# rewire's dense path and PyTorch get OpenBLAS's AVX-512 kernels
# (bench/peer_blas.py does the same for the peers). CORETYPE=keep leaves the
# environment's choice.
if [[ ${CORETYPE:-auto} == auto ]]; then
    if grep -qw avx512bw /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo; then
        export OPENBLAS_CORETYPE=SkylakeX
    fi
elif [[ $CORETYPE != keep ]]; then
    export OPENBLAS_CORETYPE=$CORETYPE
fi
export PEER_CORETYPE=keep # the peers take the choice above

{
    echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} for rewire's dense path and PyTorch"
    echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    echo "# $($REWIRE --version), torch $($PY -c 'import torch; print(torch.__version__)'), GOMP_SPINCOUNT for PyTorch: ${TORCH_GOMP_SPINCOUNT:-libgomp default}"
} >> "$OUT"
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r of $ROUNDS" >&2
    echo "{\"bench\":\"round\",\"round\":$r,\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$OUT"
    "$REWIRE" bench train --hidden "$NET" --sparsities "$SPARSITIES" --threads "1,$THREADS" --json >> "$OUT"
    $PY bench/peer_pytorch.py --what train --hidden "$NET" --sparsities "$SPARSITIES" --threads "$THREADS" >> "$OUT"
    "$REWIRE" bench infer --hidden "$NET" --sparsities "$SPARSITIES" --threads "$THREADS" --json >> "$OUT"
    $PY bench/peer_pytorch.py --what infer --hidden "$NET" --sparsities "$SPARSITIES" --threads "$THREADS" >> "$OUT"
    if [[ $KERNELS != 0 ]]; then
        "$REWIRE" bench kernels --threads "$THREADS" --json >> "$OUT"
    fi
done
$PY bench/tabulate.py "$OUT"
