"""Training through the library's run loop (rw_run_*): rewire.train, the
`rewire train` command as a call, and rewire.Trainer for a model and data
of your own.

A run executes in a thread of its own while the calling (main) thread
waits, so Ctrl-C reaches Python at once: the run is asked to stop
(rw_run_stop), stops after the optimizer step in progress, writes its
checkpoint there (when it has a checkpoint path), and KeyboardInterrupt is
raised once it has. An exception in a callback stops the run the same way
and is raised from the call."""

import signal
import sys
import threading
from dataclasses import dataclass, field
from typing import Optional

from . import _options as opt
from ._lib import Error, check, cstr, error, ffi, lib, take_string
from .data import Dataset
from .model import EvalResult, Model, eval_result


# ---- what callbacks receive ----------------------------------------------

@dataclass
class Progress:
    """After every optimizer step (rw_progress)."""
    epoch: int          # 0-based epoch in progress (0 for a language model)
    step: int           # optimizer steps so far
    samples: int        # samples (tokens) seen in the epoch (run)
    epoch_samples: int
    loss: float         # mean training loss so far in the epoch (since the last report)
    seconds: float


@dataclass
class EpochReport:
    """After every finished epoch (rw_run_epoch); the log's epoch line."""
    epoch: int
    epochs: int
    step: int
    train_loss: Optional[float]
    samples_per_second: Optional[float]
    lr: Optional[float]
    test: EvalResult
    val: Optional[EvalResult]
    seconds: float
    sparsity: float
    update_seconds: float
    updates: int
    itop_rate: float
    nm_mask_change: Optional[float] = None
    nm_beta: Optional[float] = None
    prune: Optional[str] = None
    phase: int = 0
    member: int = 0
    phase_epoch: int = 0
    phase_epochs: int = 0


@dataclass
class TopologyEvent:
    """After every topology update (rw_topology_stats); the log's topology line."""
    update: int
    step: int
    epoch: int
    dropped: list
    grown: list
    nonzeros: list
    density: list
    drop_fraction: float
    itop_rate: float
    sad: int
    sad_rate: float
    dead_neurons: list
    unconnected_inputs: int
    seconds: float
    total_seconds: float
    shrunk: Optional[list] = None
    inputs_kept: int = 0     # input-level DST: inputs left after the update (0 without)
    inputs_removed: int = 0  # and removed by it
    topology_hash: int = 0   # 64-bit hash of every weight's pattern after the update


@dataclass
class RunResult:
    """What a run ends with (rw_run_result), and the trained model."""
    model: Model
    test: Optional[EvalResult]
    val: Optional[EvalResult]
    steps: int
    train_seconds: float
    train_samples: int
    train_samples_per_second: float
    sparsity: float
    updates: int
    update_seconds: float
    itop_rate: float
    stopped: bool
    checkpoint_step: int
    target_sparsity: float
    members: int = 0
    member_accuracy_mean: float = 0.0
    member_accuracy_best: float = 0.0
    lm: Optional[dict] = field(default=None)  # a language model's final evaluation
    inputs_kept: int = 0  # input-level DST: the inputs the saved model reads (0 without)

    @property
    def test_accuracy(self):
        return self.test.accuracy if self.test else None

    @property
    def test_loss(self):
        return self.test.loss if self.test else None


def _list(p, n, cast=int):
    return [] if p == ffi.NULL else [cast(p[i]) for i in range(n)]


def _topology_event(s):
    n = s.n_layers
    return TopologyEvent(s.update, s.step, s.epoch, _list(s.dropped, n), _list(s.grown, n),
                         _list(s.nonzeros, n), _list(s.density, n, float), s.drop_fraction,
                         s.itop_rate, s.sad, s.sad_rate, _list(s.dead_neurons, max(n - 1, 0)),
                         s.unconnected_inputs, s.seconds, s.total_seconds,
                         _list(s.shrunk, n) if s.shrunk != ffi.NULL else None, s.inputs_kept,
                         s.inputs_removed, int(s.topology_hash))


def _epoch_report(e):
    st = e.stats if e.stats != ffi.NULL else None
    return EpochReport(
        e.epoch, e.epochs, e.step, st.loss if st else None, st.samples_per_second if st else None,
        st.lr if st else None, eval_result(e.test), eval_result(e.val) if e.val != ffi.NULL else None,
        e.seconds, e.sparsity, e.update_seconds, e.updates, e.itop_rate,
        e.nm_mask_change if e.nm else None, e.nm_beta if e.nm else None,
        ("gmp", "imp", "soup", "issp")[e.prune_method] if e.prune else None,
        e.phase, e.member, e.phase_epoch, e.phase_epochs)


class _Callbacks:
    """The run's C callbacks over the caller's Python ones. An exception in
    one is kept, the run is asked to stop, and the exception is raised when
    the run has returned."""

    def __init__(self, progress=None, on_epoch=None, on_topology=None, on_report=None,
                 verbose=False):
        self.user = (progress, on_epoch, on_topology, on_report)
        self.verbose = verbose
        self.error = None
        self.run = None
        self.c = {}
        if progress:
            self.c["progress"] = ffi.callback("rw_progress_fn", self._progress, onerror=self._onerror)
        if on_epoch or verbose:
            self.c["on_epoch"] = ffi.callback("rw_run_epoch_fn", self._epoch, onerror=self._onerror)
        if on_topology:
            self.c["on_topology"] = ffi.callback("rw_topology_fn", self._topology,
                                                 onerror=self._onerror)
        if on_report or verbose:
            self.c["on_lm_report"] = ffi.callback("rw_lm_report_fn", self._report,
                                                  onerror=self._onerror)

    def install(self, c):
        for k, cb in self.c.items():
            setattr(c, k, cb)

    def _fail(self, exc):
        if self.error is None:
            self.error = exc
        if self.run is not None:
            lib.rw_run_stop(self.run)

    def _onerror(self, exc_type, exc, tb):
        self._fail(exc if exc is not None else exc_type())
        return 1

    def _progress(self, p, user):
        try:
            self.user[0](Progress(p.epoch, p.step, p.samples, p.epoch_samples, p.loss, p.seconds))
        except BaseException as exc:  # noqa: B902 - re-raised once the run has stopped
            self._fail(exc)
        return 0

    def _epoch(self, e, user):
        try:
            r = _epoch_report(e)
            if self.verbose:
                val = "  val %.2f%%" % (100 * r.val.accuracy) if r.val else ""
                loss = "  loss %.4f" % r.train_loss if r.train_loss is not None else ""
                print("epoch %d/%d  step %d%s%s  test %.2f%%  sparsity %.4f  %.1fs"
                      % (r.epoch, r.epochs, r.step, loss, val, 100 * r.test.accuracy, r.sparsity,
                         r.seconds), file=sys.stderr, flush=True)
            if self.user[1] and self.user[1](r):
                return 1
        except BaseException as exc:  # noqa: B902
            self._fail(exc)
            return 1
        return 0

    def _topology(self, s, user):
        try:
            self.user[2](_topology_event(s))
        except BaseException as exc:  # noqa: B902
            self._fail(exc)

    def _report(self, r, user):
        from .lm import LMReport
        try:
            rep = LMReport(r.step, r.steps, r.train_loss, r.val_loss, r.val_bits_per_byte,
                           bool(r.whole_split), r.lr, r.tokens_per_second, r.seconds, r.sparsity,
                           r.updates, r.itop_rate)
            if self.verbose:
                print("step %d/%d  train %.4f  val %.4f  (%.3f bits/byte)  %.0f tokens/s  %.1fs"
                      % (rep.step, rep.steps, rep.train_loss, rep.val_loss, rep.val_bits_per_byte,
                         rep.tokens_per_second, rep.seconds), file=sys.stderr, flush=True)
            if self.user[3] and self.user[3](rep):
                return 1
        except BaseException as exc:  # noqa: B902
            self._fail(exc)
            return 1
        return 0


def run_interruptible(call, run, threads=None):
    """call() in a thread of its own, so that Ctrl-C (KeyboardInterrupt in
    the main thread) asks the run to stop; waits for it and re-raises. The
    thread gets the caller's OpenMP thread count (OpenMP keeps it per thread)
    or `threads`."""
    n = int(threads) if threads else lib.rw_get_num_threads()
    if threading.current_thread() is not threading.main_thread():
        lib.rw_set_num_threads(n)
        return call()
    box = {}
    # Waited on instead of Thread.join: Python 3.11's join, interrupted by
    # Ctrl-C, can mark a thread that is still running as stopped
    # (bpo-45274's fix, undone in later releases), and the run's memory
    # must not be freed under it.
    finished = threading.Lock()
    finished.acquire()

    def target():
        lib.rw_set_num_threads(n)
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: B902 - handed to the waiting thread
            box["error"] = exc
        finally:
            finished.release()

    t = threading.Thread(target=target, name="rewire run", daemon=True)
    # SIGINT stays blocked from before the thread starts until this thread
    # waits inside the try below: a Ctrl-C in between (a loaded machine can
    # let the run take many steps there) would otherwise raise
    # KeyboardInterrupt outside it, leaving the run going on memory the
    # caller then frees. The run thread inherits the block, so the signal
    # always comes here.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        t.start()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        raise
    interrupted = None
    while True:
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            finished.acquire()
            break
        except KeyboardInterrupt as exc:
            interrupted = exc
            lib.rw_run_stop(run)
    t.join()
    if "error" in box:
        raise box["error"]
    if interrupted is not None:
        raise interrupted
    return box["value"]


def _result(model, r, has_val, lm=None):
    return RunResult(
        model, eval_result(r.test) if lm is None else None,
        eval_result(r.val) if has_val else None, r.steps, r.train_seconds, r.train_samples,
        r.train_samples_per_second, r.sparsity, r.updates, r.update_seconds, r.itop_rate,
        bool(r.stopped), r.checkpoint_step, r.target_sparsity, r.members, r.member_accuracy_mean,
        r.member_accuracy_best, lm, r.inputs_kept)


# ---- the plan of a run: the command's flags turned into configs ----------

class _Plan:
    """The configs a run is made with, from option values (as cmd_train.c
    resolves its flags)."""

    def __init__(self, v, given, lm=False):
        self.values = v
        self.tc = opt.train_config(v, lm)
        self.nm = None if lm else opt.nm_config(v, given)
        if lm and v["prune"] in ("imp", "soup"):
            raise ValueError("prune=%r: a language model takes prune='gmp'|'issp' (IMP and soups "
                             "retrain in phases of epochs)" % v["prune"])
        if v.get("input_budget", 0) > 0 and (v["prune"] is not None or self.nm is not None or
                                             v.get("dense_first")):
            raise ValueError("input_budget removes inputs of a sparse first layer during dst "
                             "training (any preset, static included): not with prune, nm or "
                             "dense_first")
        self.ps, start = opt.prune_config(v, self.tc)
        self.prune_active = self.ps is not None
        self.dc, self.dst_active = None, False
        if not self.prune_active:
            self.dc, self.dst_active, start = opt.dst_config(v)
        self.start_sparsity = start
        self.gradual = self.prune_active and v["prune"] in ("gmp", "issp")
        if self.gradual:
            self.dc = ffi.new("rw_dst_config *")
            check(lib.rw_prune_schedule_dst_config(self.ps, self.dc))
            self.dst_active = True

    def check_resumed(self, run, model_ptr, path):
        """A resumed run's dynamic sparse and N:M training must be the options'."""
        saved = ffi.new("rw_dst_config *")
        has = lib.rw_trainer_dst(lib.rw_run_trainer(run), saved, ffi.NULL)
        if has and not self.dst_active:
            raise Error("%s: the checkpoint holds dynamic-sparse-training state, but its options "
                        "turn dynamic sparse training off" % path, "format")
        if self.dst_active and not has:
            raise Error("%s: the checkpoint's options turn dynamic sparse training on, but it holds "
                        "no dynamic-sparse-training state" % path, "format")
        why = has and opt.dst_differs(saved, self.dc)
        if why:
            raise Error("%s: the checkpoint's dynamic-sparse-training settings are not those of its "
                        "options (%s)" % (path, why), "format")
        if self.nm is not None or lib.rw_model_nm_train_config(model_ptr, ffi.NULL):
            saved_nm = ffi.new("rw_nm_train_config *")
            has = lib.rw_model_nm_train_config(model_ptr, saved_nm)
            why = (not has or self.nm is None) and "N:M training on one side only" or \
                opt.nm_differs(saved_nm, self.nm)
            if why:
                raise Error("%s: the checkpoint's N:M training is not that of its options (%s)"
                            % (path, why), "format")

    def run_config(self, out=None, log=None, checkpoint=None, checkpoint_every=0, flags=None,
                   callbacks=None, lm_schedule=None):
        c = ffi.new("rw_run_config *", lib.rw_run_config_default())
        keep = [c]
        c.train = self.tc[0]
        if self.dst_active and not self.gradual:
            c.dst = self.dc
        if self.prune_active:
            c.prune = self.ps
        if self.nm is not None:
            c.nm = self.nm
        if lm_schedule is not None:
            c.lm = lm_schedule
        for name, value in (("out", out), ("log", log), ("checkpoint", checkpoint),
                            ("checkpoint_flags", flags)):
            if value is not None:
                s = ffi.new("char[]", cstr(value, name))
                keep.append(s)
                setattr(c, name, s)
        if checkpoint_every and not checkpoint:
            raise ValueError("checkpoint_every needs checkpoint=PATH")
        c.checkpoint_every = int(checkpoint_every or 0)
        if callbacks is not None:
            callbacks.install(c)
        return c, keep


def _memory_limit(max_memory):
    return lib.rw_available_memory() if max_memory is None else opt.parse_memory(max_memory)


def _check_memory(est, data_bytes, limit, explicit):
    need = est.total + data_bytes
    if limit > 0 and need > limit:
        raise Error("the run needs about %.2f MiB (model %d, optimizer %d, gradients %d, activations "
                    "%d, data %d bytes), more than the limit of %.2f MiB (%s); lower hidden, batch or "
                    "the density, or raise max_memory"
                    % (need / 2**20, est.model, est.optimizer, est.gradients, est.activations,
                       data_bytes, limit / 2**20,
                       "max_memory" if explicit else "the memory available now"), "no memory")


def _data_bytes(*sets):
    return sum(len(d) * (4 * d.features + 1) for d in sets if d is not None)


def _load_data(v):
    tr, va = ffi.new("rw_dataset **"), ffi.new("rw_dataset **")
    check(lib.rw_dataset_load_part(cstr(v["data"], "data"), 0, v["train_limit"], v["val_split"],
                                   v["seed"], tr, va))
    train, val = Dataset(tr[0]), Dataset(va[0])
    te = ffi.new("rw_dataset **")
    check(lib.rw_dataset_load_part(cstr(v["data"], "data"), 1, v["test_limit"], 0.0, 0, te,
                                   ffi.NULL))
    return train, val, Dataset(te[0])


def _mlp_config(v, sparsity, inputs, classes):
    sizes = [inputs] + [int(s) for s in v["hidden"].split(",")] + [classes]
    c = ffi.new("rw_model_config *", lib.rw_model_config_default())
    arr = ffi.new("int[]", sizes)
    c.sizes = arr
    c.n_layers = len(sizes) - 1
    c.sparsity = sparsity
    c.distribution = opt.INIT.index(v["init"])
    c.dense_first = int(v["dense_first"])
    c.dense_last = int(v["dense_last"])
    c.layer_norm = int(v["layer_norm"])
    c.activation = ("relu", "leaky_relu", "tanh", "gelu").index(v["activation"])
    c.leaky_slope = v["leaky_slope"]
    c.seed = v["seed"]
    return c, arr


def _split_free(kw):
    free = {k: kw.pop(k) for k in list(kw) if k in opt.FREE}
    return free


def _execute(model_handle, run, call, threads):
    """Runs call() with the model marked busy (no predictions, no close
    from other threads meanwhile)."""
    model_handle.busy = "training"
    try:
        return run_interruptible(call, run, threads)
    finally:
        model_handle.busy = None


def train(*, progress=None, on_epoch=None, on_topology=None, verbose=False, **options):
    """`rewire train` as a call: loads the data, builds the MLP, trains it
    through the library's run loop, evaluates after every epoch and returns
    a RunResult (its .model is the trained rewire.Model).

    Options are the command's flags with '-' as '_' and the same defaults
    and ranges (README, "rewire train"): data, hidden (list or 'N,N'),
    sparsity, init, dense_first, dense_last, layer_norm, activation,
    leaky_slope, epochs, batch, optimizer, lr, momentum, nesterov,
    weight_decay, beta1, beta2, adam_eps, schedule, warmup_epochs,
    step_every, step_gamma, clip_norm, val_split, train_limit, test_limit,
    seed; dynamic sparse training: dst ('rigl', ...), drop, grow,
    update_every, drop_fraction, drop_schedule, update_until, redistribute,
    window, mest_lambda, initial_sparsity, prune_start, prune_end;
    normalize ('global', 'feature'); input-level DST: input_budget,
    input_select ('importance', 'random', 'variance'), input_start,
    input_end; training
    from dense to sparse: prune ('gmp', 'imp', 'soup', 'issp'), rounds,
    rewind_step, soup_size, prune_scope, shrink; N:M: nm ('2:4'), nm_method,
    nm_layers, nm_lambda, nm_decay_end; and out, log (JSONL), checkpoint,
    checkpoint_every, resume, max_memory, threads.

    progress(Progress) is called after every step, on_epoch(EpochReport)
    after every epoch (return True to stop), on_topology(TopologyEvent)
    after every topology update. The same options give the same model file
    and JSONL log as the command, and checkpoints resume with either."""
    free = _split_free(options)
    resume = free.get("resume")
    given = set(options)
    cb = _Callbacks(progress, on_epoch, on_topology, verbose=verbose)
    limit = _memory_limit(free.get("max_memory"))
    model = run = None
    try:
        if resume is not None:
            run_p, model_p, flags = ffi.new("rw_run **"), ffi.new("rw_model **"), ffi.new("char **")
            check(lib.rw_run_resume(cstr(resume, "resume"), limit, model_p, run_p, flags))
            run = run_p[0]
            model = Model(model_p[0])
            stored = take_string(flags[0])
            stored = stored.decode() if stored is not None else None
            values = opt.TRAIN.from_flags(stored, resume)
            asked = opt.TRAIN.resolve(options)
            for k in given:
                if asked[k] != values[k]:
                    raise ValueError("%s=%r differs from the checkpoint's %r: a resumed run keeps "
                                     "the settings it started with" % (k, asked[k], values[k]))
            given = set()
        else:
            values = opt.TRAIN.resolve(options)
        plan = _Plan(values, given)
        if plan.prune_active and not plan.gradual and (resume or free.get("checkpoint")):
            raise ValueError("prune='imp'|'soup' runs take no checkpoint or resume (they rewind and "
                             "retrain in phases); prune='gmp'|'issp' do")
        train_set, val_set, test_set = _load_data(values)
        if resume is not None:
            plan.check_resumed(run, model._handle.ptr, resume)
            tc = lib.rw_trainer_config(lib.rw_run_trainer(run))
            est = ffi.new("rw_memory_estimate *")
            check(lib.rw_estimate_trainer_memory(model._handle.ptr, ffi.new("rw_train_config *", tc),
                                                 est))
        else:
            mc, keep = _mlp_config(values, 0.0 if plan.nm is not None else plan.start_sparsity,
                                   train_set.features, train_set.classes)
            est = ffi.new("rw_memory_estimate *")
            check(lib.rw_estimate_memory(mc, plan.tc, est))
            if plan.nm is not None:
                extra = ffi.new("int64_t *")
                check(lib.rw_estimate_nm_train_memory(mc, plan.nm, extra))
                est.model += extra[0]
                est.total += extra[0]
        _check_memory(est, _data_bytes(train_set, val_set, test_set), limit,
                      free.get("max_memory") is not None)
        if resume is None:
            out = ffi.new("rw_model **")
            check(lib.rw_model_create(mc, out))
            model = Model(out[0])
            mean, std = train_set.stats()
            lib.rw_model_set_normalization(out[0], mean, std if std > 0 else 1.0)
            if values["normalize"] == "feature":
                fm, fs = train_set.feature_stats()
                check(lib.rw_model_set_feature_normalization(
                    out[0], ffi.from_buffer("float[]", fm), ffi.from_buffer("float[]", fs)))
        if plan.prune_active and not plan.gradual:
            first, phase = ffi.new("int *"), ffi.new("int *")
            lib.rw_prune_phase_epochs(plan.tc, plan.ps, first, phase)
            spe = (len(train_set) + plan.tc.batch - 1) // plan.tc.batch
            if plan.ps.method == 1 and plan.ps.rewind_step >= phase[0] * spe:
                raise ValueError("rewind_step %d is not below the %d steps of a retrain phase"
                                 % (plan.ps.rewind_step, phase[0] * spe))
        flags = opt.TRAIN.to_flags(values) if free.get("checkpoint") else None
        c, keep_c = plan.run_config(free.get("out"), free.get("log"), free.get("checkpoint"),
                                    free.get("checkpoint_every", 0), flags, cb)
        if resume is not None:
            check(lib.rw_run_configure(run, c))
        else:
            run_p = ffi.new("rw_run **")
            check(lib.rw_run_new(model._handle.ptr, c, run_p))
            run = run_p[0]
        cb.run = run
        res = ffi.new("rw_run_result *")
        vs = val_set._ptr() if len(val_set) else ffi.NULL

        def call():
            return lib.rw_run_train(run, train_set._ptr(), vs, test_set._ptr(), res)

        rc = _execute(model._handle, run, call, free.get("threads"))
        if cb.error is not None:
            raise cb.error
        if rc:
            raise _failure(rc, res)
        return _result(model, res, len(val_set) > 0)
    finally:
        if run is not None:
            lib.rw_run_free(run)


def _failure(rc, res):
    e = error(rc)
    if res.checkpoint_kept != ffi.NULL:
        e.checkpoint = ffi.string(res.checkpoint_kept).decode()
        e.args = ("%s (the last good checkpoint, %s at step %d, is kept)"
                  % (e.args[0], e.checkpoint, res.checkpoint_step),)
    return e


# Trainer: the training options only (the model and the data are the caller's).
_TRAINER_NAMES = ["sparsity", "init"] + [n for n in opt.TRAIN.order if n not in (
    "data", "hidden", "sparsity", "init", "dense_first", "dense_last", "layer_norm", "activation",
    "leaky_slope", "val_split", "train_limit", "test_limit", "normalize")]
TRAINER = opt.Specs([opt.TRAIN.specs[n] for n in _TRAINER_NAMES], "rewire.Trainer")


class Trainer:
    """The run loop over a model and datasets of your own:

        t = rewire.Trainer(model, epochs=5, dst="rigl", log="run.jsonl")
        result = t.fit(train, test, val=None)

    Options are rewire.train's training options (epochs, batch, optimizer,
    lr, ..., dst and its criteria, prune, nm, out, log, checkpoint,
    checkpoint_every, threads); `sparsity` is the target of gradual pruning
    (GraNet, prune=...), by default the model's, and `init` how pruning
    shares it. The model must be built at the run's starting sparsity (dense
    for prune=... and nm=...) and stays the caller's."""

    def __init__(self, model, *, progress=None, on_epoch=None, on_topology=None, verbose=False,
                 **options):
        if not isinstance(model, Model):
            raise TypeError("Trainer takes a rewire.Model, got %s" % type(model).__name__)
        self._free = _split_free(options)
        if "resume" in self._free or "max_memory" in self._free:
            raise TypeError("use rewire.Trainer.resume(checkpoint) to resume")
        if "sparsity" not in options:
            options["sparsity"] = min(round(model.sparsity, 6), 0.999999)
        self.model = model
        self._given = set(options)
        self._values = TRAINER.resolve(options)
        self._plan = _Plan(self._values, self._given)
        if self._plan.prune_active and not self._plan.gradual and self._free.get("checkpoint"):
            raise ValueError("prune='imp'|'soup' runs take no checkpoint (they rewind and retrain "
                             "in phases); prune='gmp'|'issp' do")
        self._cb = _Callbacks(progress, on_epoch, on_topology, verbose=verbose)
        self._run = None
        self._resumed = None

    @classmethod
    def resume(cls, checkpoint, *, progress=None, on_epoch=None, on_topology=None, verbose=False,
               max_memory=None, **free):
        """A trainer positioned where the checkpoint's run stopped, with the
        options it started with; .model is its model. Give the training set
        it trained on to fit()."""
        bad = [k for k in free if k not in opt.FREE]
        if bad:
            raise TypeError("a resumed run keeps its options; only %s may be given, not %s"
                            % (", ".join(opt.FREE), ", ".join(bad)))
        run_p, model_p, flags = ffi.new("rw_run **"), ffi.new("rw_model **"), ffi.new("char **")
        check(lib.rw_run_resume(cstr(checkpoint, "checkpoint"), _memory_limit(max_memory), model_p,
                                run_p, flags))
        model = Model(model_p[0])
        run = run_p[0]
        try:
            stored = take_string(flags[0])
            stored = stored.decode() if stored is not None else None
            values = TRAINER.from_flags(stored, checkpoint)
            t = cls.__new__(cls)
            t.model, t._free, t._given, t._values = model, free, set(), values
            t._plan = _Plan(values, set())
            t._plan.check_resumed(run, model._handle.ptr, checkpoint)
            t._cb = _Callbacks(progress, on_epoch, on_topology, verbose=verbose)
            t._run, t._resumed = run, checkpoint
            run = None
            return t
        finally:
            if run is not None:
                lib.rw_run_free(run)

    def fit(self, train, test, val=None):
        """Trains until the run's epochs are done (or on_epoch stops it),
        evaluating on val and test after every epoch; returns a RunResult.
        A resumed trainer continues where its checkpoint stopped."""
        for name, d in (("train", train), ("test", test)):
            if not isinstance(d, Dataset):
                raise TypeError("%s must be a rewire.Dataset, got %s" % (name, type(d).__name__))
        if val is not None and not isinstance(val, Dataset):
            raise TypeError("val must be a rewire.Dataset or None")
        model = self.model
        model._ptr()
        flags = TRAINER.to_flags(self._values) if self._free.get("checkpoint") else None
        c, keep = self._plan.run_config(self._free.get("out"), self._free.get("log"),
                                        self._free.get("checkpoint"),
                                        self._free.get("checkpoint_every", 0), flags, self._cb)
        changes = self._plan.dst_active or self._plan.prune_active or self._plan.nm is not None
        if changes:
            model._topology_change("training with dynamic sparsity, pruning or N:M")
        if self._run is None:
            run_p = ffi.new("rw_run **")
            check(lib.rw_run_new(model._handle.ptr, c, run_p))
            self._run = run_p[0]
        else:
            check(lib.rw_run_configure(self._run, c))
        run = self._run
        self._cb.run = run
        self._cb.error = None
        res = ffi.new("rw_run_result *")
        vs = val._ptr() if val is not None and len(val) else ffi.NULL

        def call():
            return lib.rw_run_train(run, train._ptr(), vs, test._ptr(), res)

        rc = _execute(model._handle, run, call, self._free.get("threads"))
        if self._cb.error is not None:
            raise self._cb.error
        if rc:
            raise _failure(rc, res)
        return _result(model, res, vs != ffi.NULL)

    def stop(self):
        """Asks the run to stop after the step in progress (from any thread)."""
        if self._run is not None:
            lib.rw_run_stop(self._run)

    def position(self):
        """(epochs finished, optimizer steps done)."""
        if self._run is None:
            return (0, 0)
        p = ffi.new("rw_progress *")
        lib.rw_trainer_position(lib.rw_run_trainer(self._run), p)
        return (p.epoch, p.step)

    def close(self):
        if getattr(self, "_run", None) is not None:
            lib.rw_run_free(self._run)
            self._run = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
