#!/usr/bin/env bash
# cmake --install puts the header, both libraries, the command and a
# pkg-config file under a prefix; a program that includes rewire.h builds
# with `pkg-config --cflags --libs rewire` (shared) and `--static`, and runs.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -eu
BUILD=$1
SRC=$2
PREFIX=$(mktemp -d)
trap 'rm -rf "$PREFIX"' EXIT
passed=0
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
export PKG_CONFIG_PATH="$(dirname "$(find "$PREFIX" -name rewire.pc)")"
for f in include/rewire.h bin/rewire; do
    [[ -e "$PREFIX/$f" ]] || { echo "missing after install: $f"; echo "install: $passed passed, 1 failed"; exit 1; }
done
passed=$((passed + 1))

cc -Wall -Wextra "$SRC/examples/minimal.c" $(pkg-config --cflags --libs rewire) -o "$PREFIX/minimal_shared"
LD_LIBRARY_PATH="$(pkg-config --variable=libdir rewire)" "$PREFIX/minimal_shared"
passed=$((passed + 1))

# Static: link the archive itself (and its private dependencies), nothing else.
cc -Wall -Wextra "$SRC/examples/minimal.c" $(pkg-config --cflags rewire) "$(pkg-config --variable=libdir rewire)/librewire.a" \
    $(pkg-config --libs-only-other --libs-only-l --static rewire | sed 's/-lrewire//') \
    -L/usr/lib/x86_64-linux-gnu/openblas-openmp -Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp \
    -o "$PREFIX/minimal_static"
"$PREFIX/minimal_static"
passed=$((passed + 1))

# The library alone runs RigL with checkpoints: stopped after 2 of 4
# epochs and run again, it resumes and ends where a run never stopped does.
cc -Wall -Wextra "$SRC/examples/rigl_checkpoint.c" $(pkg-config --cflags --libs rewire) \
    -o "$PREFIX/rigl_checkpoint"
mkdir -p "$PREFIX/stopped" "$PREFIX/straight"
export LD_LIBRARY_PATH="$(pkg-config --variable=libdir rewire)"
"$PREFIX/rigl_checkpoint" "$SRC/tests/data/fashion-small" "$PREFIX/stopped" 2 >/dev/null
"$PREFIX/rigl_checkpoint" "$SRC/tests/data/fashion-small" "$PREFIX/stopped" | grep -q '^resuming'
"$PREFIX/rigl_checkpoint" "$SRC/tests/data/fashion-small" "$PREFIX/straight" >/dev/null
cmp "$PREFIX/stopped/model.safetensors" "$PREFIX/straight/model.safetensors"
passed=$((passed + 1))

"$PREFIX/bin/rewire" --version
passed=$((passed + 1))
echo "install: $passed passed, 0 failed"
