#!/usr/bin/env bash
# The rooms of src/ and what each may include, checked by grep (ctest
# "structure"). The layers, from the ground up:
#   core                          (nothing else)
#   kernels, io, data, text       core and themselves
#   nn                            core, kernels, io, data and itself: never sparsity
#   sparsity                      nn and below
#   models                        sparsity, text and below
#   run                           models and below
#   bench                         the library below cli
#   cli                           rewire.h and cli/ only: the CLI is a shell over the public API
# Also: a parameter's storage kind (CSR, N:M, dense) is asked only in the
# layer files (nn/linear*.c) and nn/param.c; a layer name is formatted
# ("fc%d") only by the model's naming function.
set -uo pipefail
cd "$(dirname "$0")/../src"
failures=0
checks=0

fail() {
    echo "structure: $*"
    failures=$((failures + 1))
}

# allowed ROOM ROOMS...: every #include "x/..." in ROOM names one of ROOMS.
allowed() {
    local room=$1
    shift
    checks=$((checks + 1))
    local pattern
    pattern=$(printf '%s|' "$@")
    pattern=${pattern%|}
    local bad
    bad=$(grep -rnE '#include "[a-z_]+/' "$room" | grep -vE "#include \"($pattern)/") || true
    [[ -z $bad ]] || fail "$room includes a room it may not:
$bad"
}

allowed core core
allowed kernels core kernels
allowed io core io
allowed data core data
allowed text core text
allowed nn core kernels io data nn
allowed sparsity core kernels io data nn sparsity
allowed models core kernels io data text nn sparsity models
allowed run core kernels io data text nn sparsity models run
allowed bench core kernels io data nn sparsity bench

checks=$((checks + 1))
bad=$(grep -rn '#include "' cli | grep -vE '#include "(rewire\.h|cli/)') || true
[[ -z $bad ]] || fail "cli includes more than rewire.h and its own headers:
$bad"

checks=$((checks + 1))
bad=$(grep -rnE '(==|!=) *(PARAM_[A-Z]+|&linear_[a-z_]+_ops)|(PARAM_[A-Z]+|storage) *(==|!=)|case PARAM_|switch \(.*storage' . \
      | grep -vE '^\./nn/(linear[a-z_]*\.c|param\.[ch]):') || true
[[ -z $bad ]] || fail "a storage-kind branch outside the layer files and nn/param.c:
$bad"

checks=$((checks + 1))
bad=$(grep -rn '"fc%' . | grep -vE '^\./nn/model\.c:[0-9]+:void model_layer_name') || true
[[ -z $bad ]] || fail "a layer name formatted outside model_layer_name:
$bad"

echo "structure: $checks checks, $failures failed"
[[ $failures -eq 0 ]]
