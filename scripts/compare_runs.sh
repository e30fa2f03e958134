#!/usr/bin/env bash
# compare_runs.sh: do two rewire binaries give users the same results?
#
# Runs a matrix of small fixed-seed configurations (every --dst preset,
# every --prune method, N:M training, optimizers, activations, validation,
# checkpoints and a resumed run, one-shot `rewire prune`, `rewire eval` and
# `rewire info`) with a reference binary, built from a commit, and a new one,
# each into a folder of its own, and compares what a user sees:
#   *.jsonl        the --log files, line for line, with the wall-clock fields
#                  removed (JSONL_TIMING below) and nothing else;
#   *.safetensors  the saved models, byte for byte (cmp);
#   *.ckpt         checkpoints, tensor for tensor and metadata for metadata,
#                  but for the three fields that follow the clock
#                  (CKPT_TIMING below): the same file is never written twice;
#   *.stdout       each command's standard output (the `result:` line without
#                  its timing keys, RESULT_TIMING below), and *.status its
#                  exit status. Standard error is kept but not compared: it
#                  carries samples/s and elapsed seconds.
#
# Usage: scripts/compare_runs.sh [--ref REV] [--new BIN_OR_DIR] [--keep DIR]
#                                [--only NAME,...] [--list]
#   --ref REV     the reference commit (b514b8d), built once in a temporary
#                 git worktree into build-ref-<short sha>/ under the repository
#                 (Release, target rewire_cli) and reused by later runs
#   --new PATH    the new binary, or a folder holding `rewire` or
#                 `build/rewire` (default: this tree's build/rewire, built or
#                 brought up to date first)
#   --keep DIR    keep every run's files in DIR (DIR/ref, DIR/new, DIR/inputs)
#                 instead of a temporary folder removed at exit
#   --only NAMES  run only these configurations (comma-separated; --list
#                 shows them)
#   --list        print the matrix and exit
# Prints one row per configuration, `same` or `DIFFERS (file: where)`, and
# `compare_runs: N configurations, N identical, 0 differ`.
# Exit status: 0 all identical, 1 any differs (or a build or run could not be
# made), 2 usage errors. Both binaries run with REWIRE_KERNELS=avx2 unless
# the environment sets it.
set -euo pipefail
export LC_ALL=C
# Both binaries on the same kernels: the AVX-512 table (newer than b514b8d)
# sums in another order than AVX2's at batches that are not multiples of
# 128, so a faithful refactor would still differ in the last bits there.
# REWIRE_KERNELS=scalar compares the reference kernels instead.
export REWIRE_KERNELS=${REWIRE_KERNELS:-avx2}

prog=compare_runs
usage() { sed -n '/^# Usage:/,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }
die_usage() {
    echo "$prog: $*" >&2
    echo "(see scripts/compare_runs.sh --help)" >&2
    exit 2
}
die() {
    echo "$prog: $*" >&2
    exit 1
}
note() { echo "$prog: $*" >&2; }

# ---- Arguments ------------------------------------------------------------

REF=b514b8d NEW='' KEEP='' ONLY='' LIST=0
need_value() { [[ $2 -ge 2 && -n ${3-} ]] || die_usage "$1 needs a value"; }
while (($#)); do
    case $1 in
    --ref) need_value "$1" $# "${2-}"; REF=$2; shift 2 ;;
    --new) need_value "$1" $# "${2-}"; NEW=$2; shift 2 ;;
    --keep) need_value "$1" $# "${2-}"; KEEP=$2; shift 2 ;;
    --only) need_value "$1" $# "${2-}"; ONLY=$2; shift 2 ;;
    --ref=* | --new=* | --keep=* | --only=*)
        v=${1#*=}
        [[ -n $v ]] || die_usage "${1%%=*} needs a value"
        case $1 in --ref=*) REF=$v ;; --new=*) NEW=$v ;; --keep=*) KEEP=$v ;; *) ONLY=$v ;; esac
        shift ;;
    --list) LIST=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die_usage "unknown argument '$1'" ;;
    esac
done

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(git -C "$SCRIPT_DIR" rev-parse --show-toplevel 2>/dev/null) ||
    die "$SCRIPT_DIR is not inside a git checkout of rewire"
DATA=$REPO/tests/data/fashion-small
# Paths given on the command line are relative to the caller's folder.
[[ -n $NEW ]] && NEW=$(realpath -m -- "$NEW")
[[ -n $KEEP ]] && KEEP=$(realpath -m -- "$KEEP")

# ---- The matrix -------------------------------------------------------------
#
# Every `train` row runs
#   rewire train $BASE FLAGS --log run.jsonl --out model.safetensors
# (a flag in FLAGS replaces BASE's) in its own folder (relative paths, so
# both binaries print the same names).
# 3000 training and 1000 test samples, 94 steps an epoch: each run takes
# well under a second. The step-based DST presets and GMP/ISS-P get
# --update-every 20 (their default 100 would not update in 282 steps).
BASE=(--data "$DATA" --hidden "64,32" --epochs 3 --batch 32 --seed 7 --threads 1)
# name | kind | flags. Kinds:
#   train       one training run
#   checkpoint  a training run with --checkpoint run.ckpt (compared as a checkpoint)
#   resume      a run stopped in its second epoch, then resumed from its last checkpoint
#   prune SRC   `rewire prune` of model SRC (trained by the reference binary
#               with row SRC's flags, the same file for both binaries, so the
#               row checks the pruning alone)
#   eval SRCS   `rewire eval` (text, --json, the training split) of each model
#   info SRCS   `rewire info` (text and --json) of each model
MATRIX='
dense              train       --sparsity 0
static             train       --sparsity 0.9
static-uniform     train       --sparsity 0.9 --init uniform --dense-last --nesterov --schedule step --step-gamma 0.5
dst-set            train       --sparsity 0.9 --dst set --update-every 20
dst-rigl           train       --sparsity 0.9 --dst rigl --update-every 20
dst-rigl-2threads  train       --sparsity 0.9 --dst rigl --update-every 20 --threads 2
dst-snfs           train       --sparsity 0.9 --dst snfs
dst-mest           train       --sparsity 0.9 --dst mest
dst-granet         train       --sparsity 0.9 --dst granet --update-every 20
dst-hebbian        train       --sparsity 0.9 --dst hebbian
prune-gmp          train       --sparsity 0.9 --prune gmp --update-every 20
prune-imp          train       --sparsity 0.9 --prune imp --rounds 2
prune-soup         train       --sparsity 0.9 --prune soup --rounds 1 --soup-size 2
prune-issp         train       --sparsity 0.9 --prune issp --update-every 20
nm-ste             train       --nm 2:4 --nm-method ste
nm-srste           train       --nm 2:4 --nm-method srste --nm-lambda 0.01
nm-decay           train       --nm 1:4 --nm-method decay --nm-layers all
adamw-clip-warmup  train       --sparsity 0.9 --optimizer adamw --lr 0.002 --weight-decay 0.01 --clip-norm 1 --warmup-epochs 1
act-tanh           train       --sparsity 0.9 --activation tanh
act-gelu           train       --sparsity 0.9 --activation gelu
val-split          train       --sparsity 0.9 --val-split 0.1 --activation leaky_relu --leaky-slope 0.05
checkpoint         checkpoint  --sparsity 0.9 --dst rigl --update-every 20 --checkpoint-every 25
resume             resume      --hidden 256,128 --batch 8 --sparsity 0.9 --dst rigl --update-every 40 --checkpoint-every 30
oneshot-magnitude  prune dense --sparsity 0.9 --scope global --eval
oneshot-wanda      prune dense --sparsity 0.9 --criterion wanda --calib 128 --eval --finetune-epochs 1 --seed 3
oneshot-nm         prune dense --nm 2:4 --eval
eval               eval  static,dense,nm-ste
info               info  static,dense,nm-ste
'

NAMES=() KINDS=() ARGS=()
while read -r name kind rest; do
    [[ -z $name ]] && continue
    NAMES+=("$name") KINDS+=("$kind") ARGS+=("$rest")
done <<<"$MATRIX"

# train_args ROW: the full `rewire train` arguments of a train-like row; a
# flag the row gives replaces the base's.
train_args() {
    local -a extra
    read -ra extra <<<"${ARGS[$1]}"
    TRAIN_ARGS=()
    local base=("${BASE[@]}") k
    for ((k = 0; k < ${#base[@]}; k += 2)); do
        [[ " ${ARGS[$1]} " == *" ${base[k]} "* ]] || TRAIN_ARGS+=("${base[k]}" "${base[k + 1]}")
    done
    TRAIN_ARGS+=("${extra[@]}")
}

row_of() {
    local i
    for i in "${!NAMES[@]}"; do [[ ${NAMES[$i]} == "$1" ]] && { echo "$i"; return 0; }; done
    return 1
}

if ((LIST)); then
    echo "(every train, checkpoint and resume row also has --data tests/data/fashion-small)"
    for i in "${!NAMES[@]}"; do
        case ${KINDS[$i]} in
        train | checkpoint | resume)
            train_args "$i"
            printf '%-18s %-10s %s\n' "${NAMES[$i]}" "${KINDS[$i]}" "${TRAIN_ARGS[*]:2}" ;;
        *) printf '%-18s %-10s %s\n' "${NAMES[$i]}" "${KINDS[$i]}" "${ARGS[$i]}" ;;
        esac
    done
    exit 0
fi

SELECTED=()
if [[ -n $ONLY ]]; then
    IFS=, read -ra want <<<"$ONLY"
    for n in "${want[@]}"; do
        i=$(row_of "$n") || die_usage "--only: no configuration '$n' (configurations: ${NAMES[*]})"
        SELECTED+=("$i")
    done
else
    SELECTED=("${!NAMES[@]}")
fi

REV_SHA=$(git -C "$REPO" rev-parse --verify --quiet "$REF^{commit}") ||
    die_usage "--ref: '$REF' is not a commit of $REPO"

# The new binary: --new (checked now, a usage error), else this tree's
# build/rewire, built or brought up to date below (an old binary would
# compare the wrong code).
NEW_BIN=$REPO/build/rewire
if [[ -n $NEW ]]; then
    if [[ -f $NEW && -x $NEW ]]; then NEW_BIN=$NEW
    elif [[ -d $NEW && -x $NEW/rewire && ! -d $NEW/rewire ]]; then NEW_BIN=$NEW/rewire
    elif [[ -d $NEW && -x $NEW/build/rewire ]]; then NEW_BIN=$NEW/build/rewire
    else die_usage "--new $NEW: neither an executable nor a folder holding rewire or build/rewire"
    fi
fi

PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3) || die "python3 is needed (the standard library only)"

# ---- The comparison helpers (python3, standard library) ------------------

# Which fields follow the wall clock, found by running each configuration
# twice with the same binary and comparing:
#   JSONL_TIMING   epoch lines: "seconds" (since the start), "train_seconds"
#                  (the epoch's training time), "samples_per_second",
#                  "update_seconds" (time in topology updates); topology lines:
#                  "update_seconds", "total_update_seconds".
#   RESULT_TIMING  the result line's train_samples_per_second, train_seconds,
#                  update_seconds.
#   CKPT_TIMING    checkpoint metadata: trainer.epoch_seconds (time into the
#                  epoch), dst.state.total_seconds, and note.log_bytes, the
#                  log's length when the checkpoint was written, which moves
#                  with the number of digits the timing fields above print.
# Everything else (losses, accuracies, learning rates, sparsity, counts of
# topology changes, itop and SAD rates...) is compared as printed.
read -r -d '' PY_HELPER <<'PYEOF' || true
import json, re, struct, sys

JSONL_TIMING = ["seconds", "train_seconds", "samples_per_second", "update_seconds",
                "total_update_seconds"]
RESULT_TIMING = ["train_samples_per_second", "train_seconds", "update_seconds"]
CKPT_TIMING = ["epoch_seconds", "total_seconds", "log_bytes"]
VALUE = r'(?:-?[0-9][0-9.]*(?:[eE][-+]?[0-9]+)?|null)'


class Differs(Exception):
    pass


def short(v, n=48):
    s = v if isinstance(v, str) else json.dumps(v)
    return s if len(s) <= n else s[:n - 3] + "..."


def strip_json(text, keys):
    """The JSON text without the members named in keys, the rest as written."""
    alt = "|".join(map(re.escape, keys))
    text = re.sub(r',"(?:%s)":%s(?=[,}])' % (alt, VALUE), "", text)
    text = re.sub(r'\{"(?:%s)":%s(?:,(?=")|(?=\}))' % (alt, VALUE), "{", text)
    return text


def has_key(o, keys):
    if isinstance(o, dict):
        return any(k in keys or has_key(v, keys) for k, v in o.items())
    if isinstance(o, list):
        return any(has_key(v, keys) for v in o)
    return False


def checked_strip(text, keys, where):
    out = strip_json(text, keys)
    try:
        o = json.loads(out)
    except ValueError as e:
        raise SystemExit("%s: not JSON after removing the timing fields (%s): %s"
                         % (where, e, short(out, 120)))
    if has_key(o, keys):
        raise SystemExit("%s: a timing field is left that is not a number: %s"
                         % (where, short(out, 120)))
    return out


def json_diff(a, b):
    """Where two JSON texts first differ, as '"key": A (ref) vs B (new)'."""
    try:
        x, y = json.loads(a), json.loads(b)
    except ValueError:
        x = y = None
    if isinstance(x, dict) and isinstance(y, dict):
        for k in list(x) + [k for k in y if k not in x]:
            if k not in y:
                return '"%s" only in ref' % k
            if k not in x:
                return '"%s" only in new' % k
            if x[k] != y[k]:
                return '"%s" %s (ref) vs %s (new)' % (k, short(x[k]), short(y[k]))
        if list(x) != list(y):
            return "the same members in another order"
    i = next((i for i, (c, d) in enumerate(zip(a, b)) if c != d), min(len(a), len(b)))
    return "column %d: %s (ref) vs %s (new)" % (i + 1, short(a[i:i + 40]), short(b[i:i + 40]))


def where_in_log(line):
    try:
        o = json.loads(line)
    except ValueError:
        return ""
    if not isinstance(o, dict):
        return ""
    keys = ["event", "update", "epoch", "phase", "member"]
    return " (" + ", ".join("%s %s" % (k, o[k]) for k in keys if k in o) + ")"


def lines_of(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().split("\n")


def compare_lines(a, b, name, describe):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            raise Differs("%s line %d%s: %s" % (name, i + 1, where_in_log(x), describe(x, y)))
    if len(a) != len(b):
        n = min(len(a), len(b))
        longer, extra = ("ref", a[n]) if len(a) > len(b) else ("new", b[n])
        raise Differs("%s line %d: only in %s: %s" % (name, n + 1, longer, short(extra, 60)))


def cmd_jsonl(ref, new, name):
    a = [checked_strip(l, JSONL_TIMING, "%s (ref) line %d" % (name, i + 1)) if l else l
         for i, l in enumerate(lines_of(ref))]
    b = [checked_strip(l, JSONL_TIMING, "%s (new) line %d" % (name, i + 1)) if l else l
         for i, l in enumerate(lines_of(new))]
    compare_lines(a, b, name, json_diff)


def strip_result(line):
    if not line.startswith("result:"):
        return line
    return re.sub(r" (?:%s)=\S*" % "|".join(RESULT_TIMING), "", line)


def result_diff(x, y):
    if x.startswith("result:") and y.startswith("result:"):
        p = dict(t.split("=", 1) for t in x.split()[1:] if "=" in t)
        q = dict(t.split("=", 1) for t in y.split()[1:] if "=" in t)
        for k in list(p) + [k for k in q if k not in p]:
            if p.get(k) != q.get(k):
                return "%s=%s (ref) vs %s (new)" % (k, p.get(k, "(none)"), q.get(k, "(none)"))
    return "%s (ref) vs %s (new)" % (short(x, 70), short(y, 70))


def cmd_text(ref, new, name):
    compare_lines([strip_result(l) for l in lines_of(ref)],
                  [strip_result(l) for l in lines_of(new)], name, result_diff)


DTYPES = {"F64": "d", "F32": "f", "F16": "e", "I64": "q", "I32": "i", "I16": "h", "I8": "b",
          "U64": "Q", "U32": "I", "U16": "H", "U8": "B", "BOOL": "?"}


def read_st(path, who):
    raw = open(path, "rb").read()
    if len(raw) < 8:
        raise Differs("%s: %s is shorter than a safetensors header" % (path, who))
    n = struct.unpack("<Q", raw[:8])[0]
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError:
        raise Differs("the %s file's header is not JSON" % who)
    meta = header.pop("__metadata__", {})
    return raw, 8 + n, meta, header


def tensor_diff(name, t, x, y, start):
    """The first element of tensor name (x, y its bytes) that differs."""
    code = DTYPES.get(t.get("dtype"))
    size = struct.calcsize("<" + code) if code else 1
    i = next(i for i, (c, d) in enumerate(zip(x, y)) if c != d) if len(x) == len(y) else 0
    if len(x) != len(y):
        return "tensor %s: %d bytes (ref) vs %d (new)" % (name, len(x), len(y))
    e = i // size
    text = ""
    if code:
        u = struct.unpack_from("<" + code, x, e * size)[0]
        v = struct.unpack_from("<" + code, y, e * size)[0]
        fmt = "%.9g" if code in "def" else "%s"
        text = ": " + fmt % u + " (ref) vs " + fmt % v + " (new)"
    return "byte %d, tensor %s element %d%s" % (start + e * size, name, e, text)


def cmd_st(ref, new, name, checkpoint):
    ra, da, ma, ha = read_st(ref, "ref")
    rb, db, mb, hb = read_st(new, "new")
    if not checkpoint and ra == rb:
        return
    if checkpoint:
        ma = {k: checked_strip(v, CKPT_TIMING, "%s (ref) metadata %s" % (name, k))
              if v.startswith("{") else v for k, v in ma.items()}
        mb = {k: checked_strip(v, CKPT_TIMING, "%s (new) metadata %s" % (name, k))
              if v.startswith("{") else v for k, v in mb.items()}
    for k in list(ma) + [k for k in mb if k not in ma]:
        if ma.get(k) != mb.get(k):
            if k not in mb or k not in ma:
                raise Differs("%s: metadata %s only in %s" % (name, k, "ref" if k in ma else "new"))
            raise Differs("%s: metadata %s: %s" % (name, k, json_diff(ma[k], mb[k])))
    for k in list(ha) + [k for k in hb if k not in ha]:
        if ha.get(k) != hb.get(k):
            if k not in hb or k not in ha:
                raise Differs("%s: tensor %s only in %s" % (name, k, "ref" if k in ha else "new"))
            for field in ["dtype", "shape", "data_offsets"] + sorted(set(ha[k]) | set(hb[k])):
                if ha[k].get(field) != hb[k].get(field):
                    raise Differs("%s: tensor %s %s %s (ref) vs %s (new)"
                                  % (name, k, field, short(ha[k].get(field)),
                                     short(hb[k].get(field))))
    if list(ha) != list(hb) or list(ma) != list(mb):
        raise Differs("%s: the same tensors and metadata in another order" % name)
    for k, t in sorted(ha.items(), key=lambda kt: kt[1]["data_offsets"][0]):
        s, e = t["data_offsets"]
        x, y = ra[da + s:da + e], rb[db + s:db + e]
        if x != y:
            raise Differs("%s: %s" % (name, tensor_diff(k, t, x, y, da + s)))
    if ra[da:] != rb[db:]:
        raise Differs("%s: the bytes after the last tensor differ" % name)
    if not checkpoint:
        i = next((i for i, (c, d) in enumerate(zip(ra, rb)) if c != d), min(len(ra), len(rb)))
        raise Differs("%s: byte %d, in the header (%s)" % (name, i,
                      "same content, other layout" if i < min(da, db) else "sizes differ"))


def main():
    cmd, ref, new, name = sys.argv[1:5]
    try:
        if cmd == "jsonl":
            cmd_jsonl(ref, new, name)
        elif cmd == "text":
            cmd_text(ref, new, name)
        elif cmd in ("model", "checkpoint"):
            cmd_st(ref, new, name, cmd == "checkpoint")
        else:
            raise SystemExit("unknown command " + cmd)
    except Differs as d:
        print(d)
        sys.exit(1)


main()
PYEOF

pycompare() { "$PY" -c "$PY_HELPER" "$@"; }

# ---- Work folders, clean-up -------------------------------------------------

REF_SRC='' OUT=''
cleanup() {
    if [[ -n $REF_SRC ]]; then
        git -C "$REPO" worktree remove --force "$REF_SRC" >/dev/null 2>&1 || true
        git -C "$REPO" worktree prune >/dev/null 2>&1 || true
    fi
    if [[ -z $KEEP && -n $OUT ]]; then rm -rf -- "$OUT"; fi
    if [[ -n ${SCRATCH:-} ]]; then rm -rf -- "$SCRATCH"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/compare_runs.XXXXXX")
if [[ -n $KEEP ]]; then
    # Only a fresh folder, or one this script filled before, is emptied.
    if [[ -e $KEEP && ! -d $KEEP ]]; then die_usage "--keep $KEEP is not a folder"; fi
    if [[ -d $KEEP && -n $(ls -A "$KEEP") && ! -e $KEEP/.compare_runs ]]; then
        die_usage "--keep $KEEP is not empty and was not written by $prog: give a new folder"
    fi
    mkdir -p "$KEEP" || die "cannot create --keep $KEEP"
    rm -rf -- "$KEEP/ref" "$KEEP/new" "$KEEP/inputs"
    touch "$KEEP/.compare_runs"
    OUT=$KEEP
else
    OUT=$SCRATCH/runs
    mkdir -p "$OUT"
fi

# ---- The two binaries -----------------------------------------------------

build_log() { # build_log LOG: the last lines of a failed build
    tail -n 15 "$1" | sed 's/^/    /' >&2
}

# The reference: REV built in a temporary worktree, kept in build-ref-<sha>/.
SHORT=$(git -C "$REPO" rev-parse --short "$REV_SHA")
REF_BUILD=$REPO/build-ref-$SHORT
REF_BIN=$REF_BUILD/rewire
if [[ -x $REF_BIN && -e $REF_BUILD/.compare_runs-built ]]; then
    note "reference $SHORT: reusing $REF_BIN"
else
    note "reference $SHORT: building into $REF_BUILD (once; later runs reuse it)"
    rm -rf -- "$REF_BUILD"
    REF_SRC=$SCRATCH/ref-src
    git -C "$REPO" worktree add --detach --quiet "$REF_SRC" "$REV_SHA" ||
        die "cannot check out $REF into a temporary worktree"
    mkdir -p "$REF_BUILD"
    if ! { cmake -S "$REF_SRC" -B "$REF_BUILD" -DCMAKE_BUILD_TYPE=Release -DREWIRE_TESTS=OFF &&
        cmake --build "$REF_BUILD" -j2 --target rewire_cli; } >"$SCRATCH/ref-build.log" 2>&1; then
        build_log "$SCRATCH/ref-build.log"
        die "building $REF ($SHORT) failed; the log above ends with the error"
    fi
    [[ -x $REF_BIN ]] || die "building $REF gave no $REF_BIN"
    touch "$REF_BUILD/.compare_runs-built"
    git -C "$REPO" worktree remove --force "$REF_SRC" >/dev/null 2>&1 || true
    REF_SRC=''
fi

if [[ -z $NEW ]]; then
    if [[ ! -e $REPO/build/CMakeCache.txt ]]; then
        note "new: configuring $REPO/build (Release)"
        cmake -S "$REPO" -B "$REPO/build" -DCMAKE_BUILD_TYPE=Release >"$SCRATCH/new-build.log" 2>&1 ||
            { build_log "$SCRATCH/new-build.log"; die "configuring $REPO/build failed"; }
    fi
    type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$REPO/build/CMakeCache.txt")
    [[ $type == Release ]] ||
        note "warning: $REPO/build is a '${type:-default}' build, the reference is Release"
    note "new: building $NEW_BIN (the current tree)"
    cmake --build "$REPO/build" -j2 --target rewire_cli >"$SCRATCH/new-build.log" 2>&1 ||
        { build_log "$SCRATCH/new-build.log"; die "building the current tree failed"; }
fi
[[ -x $NEW_BIN ]] || die "no new binary at $NEW_BIN"

# ---- Running a configuration --------------------------------------------

STEP_TIMEOUT=300

# step DIR NAME CMD...: runs CMD in DIR; NAME.stdout, NAME.stderr, NAME.status.
step() {
    local dir=$1 name=$2 status=0
    shift 2
    (cd "$dir" && exec timeout "$STEP_TIMEOUT" "$@") >"$dir/$name.stdout" 2>"$dir/$name.stderr" ||
        status=$?
    echo "$status" >"$dir/$name.status"
}

# stop_in_epoch2 DIR BIN ARGS...: `rewire train` killed by SIGPIPE at its
# first write to standard error after the "epoch 1/N" line, that is at the
# end of epoch 2, before that epoch's own checkpoint: the checkpoint on disk
# is the last --checkpoint-every one inside epoch 2, whatever the machine's
# speed. (Standard error is read line by line by bash, which leaves at that
# line; the run is then in epoch 2.) --default-signal undoes a SIGPIPE
# ignored by whoever started this script.
stop_in_epoch2() {
    local dir=$1 bin=$2 status=0
    shift 2
    (cd "$dir" && exec timeout "$STEP_TIMEOUT" env --default-signal=PIPE "$bin" train "$@") \
        >"$dir/stop.stdout" \
        2> >(while IFS= read -r line; do
                printf '%s\n' "$line"
                [[ $line == "epoch 1/"* ]] && break
            done >"$dir/stop.stderr") || status=$?
    echo "$status" >"$dir/stop.status"
}

# run_row ROW BIN DIR: the commands of one configuration.
run_row() {
    local i=$1 bin=$2 dir=$3 src
    rm -rf -- "$dir"
    mkdir -p "$dir"
    case ${KINDS[$i]} in
    train)
        train_args "$i"
        step "$dir" train "$bin" train "${TRAIN_ARGS[@]}" --log run.jsonl --out model.safetensors ;;
    checkpoint)
        train_args "$i"
        step "$dir" train "$bin" train "${TRAIN_ARGS[@]}" --checkpoint run.ckpt \
            --log run.jsonl --out model.safetensors ;;
    resume)
        # The stopped run's log is not compared: lines written after its
        # last checkpoint may sit unflushed. The resume cuts the log back to
        # that checkpoint and goes on, so the final log is whole.
        train_args "$i"
        local attempt
        for attempt in 1 2 3; do
            rm -f "$dir"/*
            stop_in_epoch2 "$dir" "$bin" "${TRAIN_ARGS[@]}" --checkpoint stopped.ckpt \
                --log run.jsonl --out model.safetensors
            step "$dir" stopped-info "$bin" info stopped.ckpt
            grep -q '^checkpoint: 1 of [0-9]* epochs done' "$dir/stopped-info.stdout" && break
            note "${NAMES[$i]}: the run was not stopped in its second epoch (try $attempt of 3):" \
                "$(tail -n 1 "$dir/stopped-info.stdout" "$dir/stopped-info.stderr" 2>/dev/null | tr '\n' ' ')"
        done
        step "$dir" resume "$bin" train --resume stopped.ckpt --checkpoint resumed.ckpt \
            --checkpoint-every 30 --threads 1 --log run.jsonl --out model.safetensors ;;
    prune)
        local -a extra
        read -ra extra <<<"${ARGS[$i]}"
        src=../../inputs/${extra[0]}/model.safetensors
        step "$dir" prune "$bin" prune "$src" "${extra[@]:1}" --data "$DATA" --threads 1 \
            -o pruned.safetensors ;;
    eval | info)
        local -a srcs
        IFS=, read -ra srcs <<<"${ARGS[$i]}"
        for src in "${srcs[@]}"; do
            local m=../../inputs/$src/model.safetensors
            if [[ ${KINDS[$i]} == eval ]]; then
                step "$dir" "eval-$src" "$bin" eval "$m" --data "$DATA" --threads 1
                step "$dir" "eval-$src-json" "$bin" eval "$m" --data "$DATA" --threads 1 --json
                step "$dir" "eval-$src-train" "$bin" eval "$m" --data "$DATA" --threads 1 \
                    --split train --limit 500 --json
            else
                step "$dir" "info-$src" "$bin" info "$m"
                step "$dir" "info-$src-json" "$bin" info "$m" --json
            fi
        done ;;
    *) die "configuration ${NAMES[$i]}: unknown kind ${KINDS[$i]}" ;;
    esac
}

# compare_row DIR_REF DIR_NEW: prints "same", or where the first file differs.
# Files are taken in the order that says most about a difference: exit
# statuses (a run that failed), logs (the first epoch or update that
# changed), standard output, checkpoints, models.
compare_row() {
    local a=$1 b=$2 f kind msg first='' others=() status rank
    local files
    files=$( (cd "$a" && ls -A; cd "$b" && ls -A) | sort -u | while read -r f; do
        case $f in
        *.stderr) continue ;;
        *.status) rank=1 ;; *.jsonl) rank=2 ;; *.stdout) rank=3 ;; *.ckpt) rank=4 ;; *) rank=5 ;;
        esac
        echo "$rank $f"
    done | sort -k1,1n -k2,2 | cut -d' ' -f2)
    for f in $files; do
        case $f in
        *.jsonl) kind=jsonl ;;
        *.ckpt) kind=checkpoint ;;
        *.safetensors) kind=model ;;
        *) kind=text ;;
        esac
        if [[ ! -e $a/$f || ! -e $b/$f ]]; then
            msg="$f: only in $([[ -e $a/$f ]] && echo ref || echo new)"
        elif [[ $kind == model ]] && cmp -s "$a/$f" "$b/$f"; then
            continue
        elif [[ $f == *.status ]]; then
            [[ $(cat "$a/$f") == "$(cat "$b/$f")" ]] && continue
            msg="$f: exit status $(cat "$a/$f") (ref) vs $(cat "$b/$f") (new)"
            msg+=": $(tail -n 1 "$b/${f%.status}.stderr" 2>/dev/null)"
        else
            status=0
            msg=$(pycompare "$kind" "$a/$f" "$b/$f" "$f") || status=$?
            ((status == 0)) && continue
            ((status == 1)) || msg="$f: cannot compare: $msg"
        fi
        [[ -z $first ]] && first=$msg || others+=("$f")
    done
    if [[ -z $first ]]; then
        echo same
    elif ((${#others[@]})); then
        echo "DIFFERS ($first; also ${others[*]})"
    else
        echo "DIFFERS ($first)"
    fi
}

# A row whose reference run failed is a broken matrix, not a difference.
ref_failure() { # ref_failure DIR: the first step that exited unexpectedly
    local s want
    for s in "$1"/*.status; do
        want=0
        [[ $s == */stop.status ]] && want=141
        if [[ $(cat "$s") != "$want" ]]; then
            local stem=${s%.status}
            echo "$(basename "$stem") exited $(cat "$s"): $(tail -n 1 "$stem.stderr" 2>/dev/null)"
            return 0
        fi
    done
    [[ -e $1/stopped-info.stdout ]] && ! grep -q '^checkpoint: 1 of' "$1/stopped-info.stdout" &&
        echo "the run was not stopped in its second epoch" && return 0
    return 1
}

# ---- Run ------------------------------------------------------------------

note "ref: $REF_BIN ($SHORT)"
note "new: $NEW_BIN"
note "runs in $OUT"

# The models `prune`, `eval` and `info` rows read, trained once by the
# reference binary into inputs/ and named from each row's folder as
# ../../inputs/NAME/model.safetensors, the same text in both outputs.
declare -A NEEDED=()
for i in "${SELECTED[@]}"; do
    case ${KINDS[$i]} in
    prune) read -r src _ <<<"${ARGS[$i]}"; NEEDED[$src]=1 ;;
    eval | info) IFS=, read -ra srcs <<<"${ARGS[$i]}"; for s in "${srcs[@]}"; do NEEDED[$s]=1; done ;;
    esac
done
for src in "${!NEEDED[@]}"; do
    j=$(row_of "$src") || die "the matrix names an unknown input model '$src'"
    run_row "$j" "$REF_BIN" "$OUT/inputs/$src"
    [[ $(cat "$OUT/inputs/$src/train.status") == 0 && -s $OUT/inputs/$src/model.safetensors ]] ||
        die "training the input model '$src' with the reference failed: $(tail -n 1 "$OUT/inputs/$src/train.stderr")"
done

start=$SECONDS
declare -A SECS=()
for side in ref new; do
    bin=$REF_BIN
    [[ $side == new ]] && bin=$NEW_BIN
    t0=$SECONDS
    for i in "${SELECTED[@]}"; do
        printf '%s: %s %s\n' "$prog" "$side" "${NAMES[$i]}" >&2
        run_row "$i" "$bin" "$OUT/$side/${NAMES[$i]}"
    done
    SECS[$side]=$((SECONDS - t0))
done

printf '\n%-18s %s\n' configuration result
total=0 same=0 differ=0
for i in "${SELECTED[@]}"; do
    name=${NAMES[$i]}
    total=$((total + 1))
    if why=$(ref_failure "$OUT/ref/$name"); then
        verdict="DIFFERS (the reference run failed, so nothing was compared: $why)"
    else
        verdict=$(compare_row "$OUT/ref/$name" "$OUT/new/$name")
    fi
    [[ $verdict == same ]] && same=$((same + 1)) || differ=$((differ + 1))
    printf '%-18s %s\n' "$name" "$verdict"
done
echo
note "ran the reference in ${SECS[ref]}s and the new binary in ${SECS[new]}s" \
    "($((SECONDS - start))s in all)${KEEP:+; files in $KEEP}"
echo "$prog: $total configurations, $same identical, $differ differ"
((differ == 0))
