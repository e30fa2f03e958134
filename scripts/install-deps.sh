#!/usr/bin/env bash
# Installs the Debian packages rewire needs that are not there yet.
# Usage: scripts/install-deps.sh [build|test|python|fuzz|data|bench|all]...   (default: build)
set -euo pipefail
# OpenMPI: data-parallel training (mpirun -np N rewire train, docs/distributed.md);
# rewire builds without it (-DREWIRE_MPI=OFF, or when not found) as one process.
want=(cmake make gcc pkg-config libopenblas-dev libopenblas-openmp-dev libjansson-dev zlib1g-dev
      libpng-dev libopenmpi-dev openmpi-bin)
# ISA-L: gzip decompression 2.7x faster than zlib's (IDX data); optional at build time.
want+=(libisal-dev)
for set in "${@:-build}"; do
    case $set in
    build) ;;
    # tests/dist_test.sh runs mpirun (the build set brings OpenMPI).
    test) want+=(libcmocka-dev libopenmpi-dev openmpi-bin) ;;
    # The Python package (python/) and its tests; PyTorch is optional (bench).
    python) want+=(python3-numpy python3-cffi python3-pytest) ;;
    # libFuzzer ships in libclang-rt-14-dev; clang's OpenMP runtime in libomp-14-dev.
    fuzz) want+=(clang libclang-rt-14-dev libomp-14-dev) ;;
    # bible-kjv: the default text of `rewire lm` (--text kjv); python3-sklearn ships
    # real tables as CSV (breast cancer, wine, iris) under
    # /usr/lib/python3/dist-packages/sklearn/datasets/data/, for the examples.
    data) want+=(dataset-fashion-mnist bible-kjv python3-sklearn) ;;
    # PyTorch, numpy and scipy for bench/peer_pytorch.py and the reference checks;
    # regex for tools/gpt2_bpe_reference.py's pre-tokenisation (\p{L}, \p{N}).
    bench) want+=(python3-torch python3-numpy python3-scipy python3-regex) ;;
    all) want+=(libcmocka-dev python3-numpy python3-cffi python3-pytest clang libclang-rt-14-dev libomp-14-dev dataset-fashion-mnist bible-kjv python3-sklearn) ;;
    *) echo "install-deps.sh: unknown set '$set' (expected build, test, python, fuzz, data, bench or all)" >&2; exit 2 ;;
    esac
done
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
