#!/bin/bash
# Interleaved rounds: old (b514b8d) and new binaries, rewire bench train at 0, 0.95, 0.99, 2 threads.
# Usage: bench/layer_redesign_speed.sh OLD_BINARY NEW_BINARY > results.txt
OLD=${1:?the binary built at b514b8d, before the layer redesign}
NEW=${2:-build/rewire}
for round in 1 2 3 4 5 6; do
  for who in old new new512; do
    case $who in
      old) bin=$OLD; env=REWIRE_KERNELS=avx2 ;;
      new) bin=$NEW; env=REWIRE_KERNELS=avx2 ;;
      new512) bin=$NEW; env=REWIRE_KERNELS=avx512 ;;
    esac
    env $env $bin bench train --sparsities 0,0.95,0.99 --threads 2 --repeats 3 --steps 100 --json 2>/dev/null | sed "s/^/$round $who /"
  done
done
