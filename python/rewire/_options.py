"""The flags of `rewire train` and `rewire lm train` as keyword arguments.

Each option is a flag of the command (its name with '-' as '_'), checked
against the same range, and turned into the library's configs the way the
command does (src/cli/cmd_train.c, train_dst.c, train_prune.c,
train_nm.c), so that a Python run and a command trains the same bytes.
The options that shape a run are also written into checkpoints exactly as
the command writes its flags (src/cli/train_checkpoint.c): a checkpoint of
either resumes with the other."""

import json
import re

from ._lib import Error, ffi, lib

INT_MAX = 2**31 - 1
INIT = ("uniform", "er", "erk")

# (flag, kind, default, lo, hi or choices). None as a default is the
# command's "not given" (-1 in its flags): the preset's value applies.
_BASE = [
    ("data", "str", "fashion-mnist"),
    ("hidden", "sizes", "1000,1000,1000"),
    ("sparsity", "float", 0.95, 0, 0.999999),
    ("init", "choice", "erk", INIT),
    ("dense-first", "flag", False),
    ("dense-last", "flag", False),
    ("layer-norm", "flag", False),
    ("activation", "choice", "relu", ("relu", "leaky_relu", "tanh", "gelu")),
    ("leaky-slope", "float", 0.01, 1e-6, 1),
    ("epochs", "int", 10, 1, 100000),
    ("batch", "int", 128, 1, 1 << 20),
    ("optimizer", "choice", "sgd", ("sgd", "adamw")),
    ("lr", "float", 0.05, 1e-12, 1e6),
    ("momentum", "float", 0.9, 0, 0.999999),
    ("nesterov", "flag", False),
    ("weight-decay", "float", 0.0, 0, 1e3),
    ("beta1", "float", 0.9, 0, 0.999999),
    ("beta2", "float", 0.999, 0, 0.999999),
    ("adam-eps", "float", 1e-8, 1e-30, 1),
    ("schedule", "choice", "cosine", ("constant", "step", "cosine")),
    ("warmup-epochs", "int", 0, 0, 100000),
    ("step-every", "int", 1, 1, 100000),
    ("step-gamma", "float", 0.1, 1e-9, 1),
    ("clip-norm", "float", 0.0, 0, 1e12),
    ("val-split", "float", 0.0, 0, 0.9),
    ("train-limit", "int", 0, 0, INT_MAX),
    ("test-limit", "int", 0, 0, INT_MAX),
    ("seed", "int", 1, 0, INT_MAX),
    ("normalize", "choice", "global", ("global", "feature")),
]
_DST = [
    ("dst", "choice", "static", ("static", "set", "rigl", "snfs", "mest", "granet", "hebbian")),
    ("drop", "choice", None, ("magnitude", "set", "mest", "random")),
    ("grow", "choice", None, ("random", "gradient", "momentum", "hebbian", "unfired")),
    ("update-every", "int", None, 0, INT_MAX),
    ("drop-fraction", "float", None, 0, 0.999),
    ("drop-schedule", "choice", None, ("constant", "cosine")),
    ("update-until", "float", None, 1e-9, 1),
    ("redistribute", "choice", None, ("none", "momentum")),
    ("window", "int", None, 1, 64),
    ("mest-lambda", "float", None, 0, 1e9),
    ("initial-sparsity", "float", None, 0, 0.999999),
    ("prune-start", "float", None, 0, 1),
    ("prune-end", "float", None, 0, 1),
    ("input-budget", "int", 0, 0, 16777216),
    ("input-select", "choice", None, ("importance", "random", "variance")),
    ("input-start", "float", None, 0, 1),
    ("input-end", "float", None, 0, 1),
]
_PRUNE = [
    ("prune", "choice", None, ("gmp", "imp", "soup", "issp")),
    ("rounds", "int", None, 1, 1000),
    ("rewind-step", "int", None, 0, INT_MAX),
    ("soup-size", "int", None, 1, 1000),
    ("prune-scope", "choice", None, ("layer", "global")),
    ("shrink", "float", None, 1e-6, 0.999999),
]
_NM = [
    ("nm", "str", None),
    ("nm-method", "choice", None, ("ste", "srste", "decay")),
    ("nm-layers", "choice", None, ("hidden", "all", "inner")),
    ("nm-lambda", "float", None, 0, 1e3),
    ("nm-decay-end", "float", None, 1e-6, 1),
]
TRAIN_SPECS = _BASE + _DST + _PRUNE + _NM
# Flags newer than the checkpoint format: written only when not at their default.
_LATE = {"layer-norm", "normalize", "input-budget", "input-select", "input-start", "input-end"}

_LM_BASE = [
    ("text", "str", "kjv"),
    ("tokenizer", "str", "bytes"),
    ("val-fraction", "float", 0.1, 1e-6, 0.9),
    ("layers", "int", 4, 1, 1024),
    ("heads", "int", 4, 1, 4096),
    ("dim", "int", 128, 1, 65536),
    ("context", "int", 64, 1, 65536),
    ("bias", "flag", False),
    ("sparsity", "float", 0.0, 0, 0.999999),
    ("init", "choice", "erk", INIT),
    ("batch", "int", 12, 1, 1 << 20),
    ("steps", "int", 2000, 1, INT_MAX),
    ("lr", "float", 1e-3, 1e-12, 1e3),
    ("min-lr", "float", 1e-4, 0, 1e3),
    ("warmup", "int", 100, 0, INT_MAX),
    ("beta1", "float", 0.9, 0, 0.999999),
    ("beta2", "float", 0.99, 0, 0.999999),
    ("adam-eps", "float", 1e-8, 1e-30, 1),
    ("weight-decay", "float", 0.1, 0, 1e3),
    ("clip-norm", "float", 1.0, 0, 1e12),
    ("eval-every", "int", 250, 0, INT_MAX),
    ("eval-batches", "int", 20, 0, 1 << 20),
    ("seed", "int", 1, 0, INT_MAX),
]
LM_SPECS = _LM_BASE + _DST + _PRUNE

# Options that do not change what is trained (not kept in checkpoints).
FREE = ("threads", "out", "log", "quiet", "checkpoint", "checkpoint_every", "resume", "max_memory")


def pyname(flag):
    return flag.replace("-", "_")


class Specs:
    def __init__(self, specs, command):
        self.command = command
        self.specs = {pyname(s[0]): s for s in specs}
        self.order = [pyname(s[0]) for s in specs]

    def defaults(self):
        return {k: self.specs[k][2] for k in self.order}

    def check(self, name, value):
        """The option's value as the command would take it, or a ValueError /
        TypeError naming the option and the flag."""
        s = self.specs[name]
        flag, kind = s[0], s[1]
        what = "%s (--%s of `%s`)" % (name, flag, self.command)
        if value is None:
            if s[2] is None:
                return None
            raise ValueError("%s cannot be None" % what)
        if kind == "flag":
            if not isinstance(value, (bool, int)):
                raise TypeError("%s must be True or False, got %r" % (what, value))
            return bool(value)
        if kind == "choice":
            if value not in s[3]:
                raise ValueError("%s must be one of %s, got %r" % (what, ", ".join(s[3]), value))
            return value
        if kind == "str":
            if not isinstance(value, str):
                raise TypeError("%s must be a str, got %s" % (what, type(value).__name__))
            return value
        if kind == "sizes":
            if isinstance(value, str):
                parts = value.split(",")
            else:
                try:
                    parts = list(value)
                except TypeError:
                    raise TypeError("%s must be a list of positive ints or 'N,N,...', got %r"
                                    % (what, value)) from None
            try:
                sizes = [int(p) for p in parts]
            except (TypeError, ValueError):
                raise ValueError("%s expects positive sizes, got %r" % (what, value)) from None
            if not sizes or len(sizes) > 64 or any(not (0 < n <= INT_MAX) for n in sizes) or \
                    any(isinstance(p, float) and p != int(p) for p in parts):
                raise ValueError("%s expects 1 to 64 positive sizes, got %r" % (what, value))
            return ",".join(map(str, sizes))
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value == int(value):
                    value = int(value)
                else:
                    raise TypeError("%s must be an int, got %r" % (what, value))
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError("%s must be a number, got %r" % (what, value))
            value = float(value)
        lo, hi = s[3], s[4]
        if not (lo <= value <= hi):
            raise ValueError("%s must be in [%g, %g], got %r" % (what, lo, hi, value))
        return value

    def resolve(self, given):
        """Defaults updated by the given options (checked), and the set of
        names given."""
        unknown = [k for k in given if k not in self.specs]
        if unknown:
            raise TypeError("unknown option%s %s for `%s` (the options are %s, and %s)"
                            % ("s" if len(unknown) > 1 else "", ", ".join(unknown), self.command,
                               ", ".join(self.order), ", ".join(FREE)))
        values = self.defaults()
        for k, v in given.items():
            values[k] = self.check(k, v)
        return values

    def to_flags(self, values):
        """The command's flags object of a checkpoint: every run-shaping flag,
        choices as indices, flags as 0/1, "not given" as -1."""
        out = {}
        for k in self.order:
            s = self.specs[k]
            v = values[k]
            if s[0] in _LATE and v == s[2]:
                continue
            kind = s[1]
            if kind == "choice":
                v = -1 if v is None else s[3].index(v)
            elif kind == "flag":
                v = int(v)
            elif kind in ("int", "float"):
                v = -1 if v is None else v
            out[s[0]] = v
        return json.dumps(out, separators=(",", ":"))

    def from_flags(self, text, path):
        """Option values from a checkpoint's flags object."""
        try:
            stored = json.loads(text) if text else None
        except ValueError:
            stored = None
        if not isinstance(stored, dict):
            raise Error("%s: the checkpoint does not record the flags of `%s` (was it written by "
                        "another program?)" % (path, self.command), "format")
        values = {}
        for k in self.order:
            s = self.specs[k]
            flag, kind, default = s[0], s[1], s[2]
            if flag not in stored:
                if flag in _LATE:
                    values[k] = default
                    continue
                raise Error("%s: the checkpoint's flag --%s is missing" % (path, flag), "format")
            v = stored[flag]
            bad = Error("%s: the checkpoint's flag --%s is malformed" % (path, flag), "format")
            if kind == "choice":
                if not isinstance(v, int) or not (-1 if default is None else 0) <= v < len(s[3]):
                    raise bad
                v = None if v == -1 else s[3][v]
            elif kind == "flag":
                if not isinstance(v, int):
                    raise bad
                v = bool(v)
            elif kind in ("int", "float"):
                if kind == "int" and (not isinstance(v, int) or isinstance(v, bool)):
                    raise bad
                if kind == "float" and not isinstance(v, (int, float)):
                    raise bad
                if default is None and v == -1:
                    v = None
                elif kind == "float":
                    v = float(v)
            elif v is not None and not isinstance(v, str):
                raise bad
            values[k] = v
        return values


TRAIN = Specs(TRAIN_SPECS, "rewire train")
LM = Specs(LM_SPECS, "rewire lm train")


def parse_memory(value):
    """Bytes from 512M, 4G, 1.5G, 100000 or an int (0: no limit)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9.]+(?:[eE][+-]?\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", value)
        if m:
            unit = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[m.group(2).lower()]
            return int(float(m.group(1)) * unit)
    raise ValueError("max_memory expects a size such as 512M, 4G or 0 (bytes), got %r" % (value,))


# ---- configs, as the command makes them ---------------------------------

def train_config(v, lm=False):
    tc = ffi.new("rw_train_config *", lib.rw_train_config_default())
    if lm:
        tc.optimizer = 1
        tc.epochs = 1
    else:
        tc.optimizer = ("sgd", "adamw").index(v["optimizer"])
        tc.momentum = v["momentum"]
        tc.nesterov = int(v["nesterov"])
        tc.schedule = ("constant", "step", "cosine").index(v["schedule"])
        tc.warmup_epochs = v["warmup_epochs"]
        tc.step_every = v["step_every"]
        tc.step_gamma = v["step_gamma"]
        tc.epochs = v["epochs"]
    tc.lr = v["lr"]
    tc.beta1 = v["beta1"]
    tc.beta2 = v["beta2"]
    tc.eps = v["adam_eps"]
    tc.weight_decay = v["weight_decay"]
    tc.clip_norm = v["clip_norm"]
    tc.batch = v["batch"]
    tc.seed = v["seed"]
    return tc


def _flag_error(msg):
    return ValueError(msg)


def prune_config(v, tc):
    """(rw_prune_schedule or None, model sparsity) as train_prune.c's
    prune_flags_config."""
    method = v["prune"]
    if method is None:
        for k in ("rounds", "rewind_step", "soup_size", "prune_scope", "shrink"):
            if v.get(k) is not None:
                raise _flag_error("%s needs prune" % k)
        return None, None
    rounds = method in ("imp", "soup")
    dst_given = [k for k in ("drop", "grow", "drop_fraction", "drop_schedule", "update_until",
                             "redistribute", "window", "mest_lambda") if v[k] is not None]
    if v["dst"] != "static" or dst_given:
        raise _flag_error("prune=%r does not combine with the dynamic sparse training options "
                          "(dst, drop, grow, drop_fraction, ...)" % method)
    for k, ok in (("rounds", rounds), ("prune_scope", rounds), ("rewind_step", method == "imp"),
                  ("soup_size", method == "soup"), ("shrink", method == "issp")):
        if v[k] is not None and not ok:
            raise _flag_error("%s does not apply to prune=%r" % (k, method))
    if rounds and any(v[k] is not None for k in ("prune_start", "prune_end", "update_every")):
        raise _flag_error("prune_start, prune_end and update_every apply to prune='gmp'|'issp', "
                          "not %r" % method)
    if not v["sparsity"] > 0:
        raise _flag_error("prune=%r needs a target sparsity above 0" % method)
    s = ffi.new("rw_prune_schedule *",
                lib.rw_prune_schedule_preset(("gmp", "imp", "soup", "issp").index(method),
                                             v["sparsity"]))
    s.distribution = INIT.index(v["init"])
    if v["rounds"] is not None:
        s.rounds = v["rounds"]
    if v["prune_scope"] is not None:
        s.scope = ("layer", "global").index(v["prune_scope"])
    if v["rewind_step"] is not None:
        s.rewind_step = v["rewind_step"]
    if v["soup_size"] is not None:
        s.soup_size = v["soup_size"]
    if v["shrink"] is not None:
        s.shrink = v["shrink"]
    if v["prune_start"] is not None:
        s.prune_start = v["prune_start"]
    if v["prune_end"] is not None:
        s.prune_end = v["prune_end"]
    if v["update_every"] is not None:
        s.update_every = v["update_every"]
    if not rounds and not s.prune_start < s.prune_end:
        raise _flag_error("prune_start %g must be below prune_end %g" % (s.prune_start, s.prune_end))
    model_sparsity = v["initial_sparsity"] if v["initial_sparsity"] is not None else 0.0
    if not model_sparsity < v["sparsity"]:
        raise _flag_error("initial_sparsity %g must be below sparsity %g"
                          % (model_sparsity, v["sparsity"]))
    first, phase = ffi.new("int *"), ffi.new("int *")
    if lib.rw_prune_phase_epochs(tc, s, first, phase) != 0:
        from ._lib import last_error
        raise _flag_error("prune=%r: %s" % (method, last_error()))
    return s, model_sparsity


def dst_config(v):
    """(rw_dst_config, active, model sparsity) as train_dst.c's dst_flags_config."""
    methods = ("static", "set", "rigl", "snfs", "mest", "granet", "hebbian")
    c = ffi.new("rw_dst_config *", lib.rw_dst_config_preset(methods.index(v["dst"])))
    c.seed = v["seed"]
    sparsity = v["sparsity"]
    for k, names in (("drop", ("magnitude", "set", "mest", "random")),
                     ("grow", ("random", "gradient", "momentum", "hebbian", "unfired")),
                     ("drop_schedule", ("constant", "cosine")), ("redistribute", ("none", "momentum"))):
        if v[k] is not None:
            setattr(c, k, names.index(v[k]))
    for k in ("update_every", "drop_fraction", "update_until", "window", "mest_lambda",
              "prune_start", "prune_end"):
        if v[k] is not None:
            setattr(c, k, v[k])
    if v["initial_sparsity"] is not None:
        c.initial_sparsity = v["initial_sparsity"]
    elif c.initial_sparsity > 0 and not c.initial_sparsity < sparsity:
        c.initial_sparsity = sparsity / 2
    model_sparsity = sparsity
    if c.initial_sparsity > 0:
        if not c.initial_sparsity < sparsity:
            raise _flag_error("initial_sparsity %g must be below sparsity %g (gradual pruning goes "
                              "from the first to the second)" % (c.initial_sparsity, sparsity))
        model_sparsity = c.initial_sparsity
        c.final_sparsity = sparsity
    if v.get("input_budget", 0) > 0:
        c.input_budget = v["input_budget"]
        if v["input_select"] is not None:
            c.input_select = ("importance", "random", "variance").index(v["input_select"])
        for k in ("input_start", "input_end"):
            if v[k] is not None:
                setattr(c, k, v[k])
        if not c.input_start <= c.input_end:
            raise _flag_error("input_start %g is after input_end %g" % (c.input_start, c.input_end))
    elif any(v.get(k) is not None for k in ("input_select", "input_start", "input_end")):
        raise _flag_error("input_select, input_start and input_end need input_budget=K")
    if (v["drop"] is not None or v["grow"] is not None) and not c.drop_fraction > 0:
        raise _flag_error("drop and grow need drop_fraction above 0 (or a dst preset other than "
                          "static)")
    active = c.drop_fraction > 0 or c.final_sparsity > 0 or c.input_budget > 0
    if active and sparsity == 0:
        raise _flag_error("dynamic sparse training needs sparsity above 0")
    return c, active, model_sparsity


_NM_EXCLUDED = ("sparsity", "dst", "drop", "grow", "update_every", "drop_fraction", "drop_schedule",
                "update_until", "redistribute", "window", "mest_lambda", "initial_sparsity",
                "prune_start", "prune_end", "init", "dense_first", "dense_last", "prune", "rounds",
                "rewind_step", "soup_size", "prune_scope", "shrink")


def nm_config(v, given=()):
    """rw_nm_train_config or None, as train_nm.c's nm_flags_check."""
    if v["nm"] is None:
        if any(v[k] is not None for k in ("nm_method", "nm_layers", "nm_lambda", "nm_decay_end")):
            raise _flag_error("nm_method, nm_layers, nm_lambda and nm_decay_end need nm='N:M'")
        return None
    for k in _NM_EXCLUDED:
        if k in given:
            raise _flag_error("nm cannot be used with %s: N:M training fixes the sparsity (1 - N/M "
                              "in the N:M layers) and changes the mask itself" % k)
    m = re.fullmatch(r"(\d+):(\d+)", v["nm"])
    n_, m_ = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if not (m and 1 <= n_ <= m_ <= 64):
        raise _flag_error("nm expects 'N:M' with 1 <= N <= M <= 64 (e.g. '2:4'), got %r" % v["nm"])
    c = ffi.new("rw_nm_train_config *", lib.rw_nm_train_config_default())
    c.n, c.m = n_, m_
    if v["nm_method"] is not None:
        c.method = ("ste", "srste", "decay").index(v["nm_method"])
    if v["nm_layers"] is not None:
        c.layers = ("hidden", "all", "inner").index(v["nm_layers"])
    if v["nm_lambda"] is not None:
        if c.method != 1:
            raise _flag_error("nm_lambda needs nm_method='srste'")
        c.srste_lambda = v["nm_lambda"]
    if v["nm_decay_end"] is not None:
        if c.method != 2:
            raise _flag_error("nm_decay_end needs nm_method='decay'")
        c.decay_end = v["nm_decay_end"]
    return c


_DST_FIELDS = ("drop", "grow", "update_every", "drop_fraction", "drop_schedule", "update_until",
               "redistribute", "window", "mest_lambda", "final_sparsity", "final_distribution",
               "prune_start", "prune_end", "initial_sparsity", "shrink", "seed", "input_budget")


def dst_differs(a, b):
    """The first field in which two rw_dst_configs differ, or None."""
    fields = _DST_FIELDS + (("input_select", "input_start", "input_end") if a.input_budget > 0
                            else ())
    for f in fields:
        x, y = getattr(a, f), getattr(b, f)
        if x != y:
            return "%s %r, not %r" % (f, x, y)
    return None


def nm_differs(a, b):
    for f in ("n", "m", "method", "layers"):
        if getattr(a, f) != getattr(b, f):
            return "%s %r, not %r" % (f, getattr(a, f), getattr(b, f))
    if a.method == 1 and a.srste_lambda != b.srste_lambda:
        return "srste_lambda %r, not %r" % (a.srste_lambda, b.srste_lambda)
    if a.method == 2 and a.decay_end != b.decay_end:
        return "decay_end %r, not %r" % (a.decay_end, b.decay_end)
    return None
