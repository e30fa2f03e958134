"""rewire.lm: GPT-style language models with truly sparse linear maps
(rewire.h, "Language models"): tokenizers, texts, the model, training
(`rewire lm train` as a call), evaluation and generation.

    import rewire.lm as lm
    result = lm.train(text="corpus.txt", steps=500, sparsity=0.9, dst="rigl",
                      out="gpt.safetensors")
    tok = lm.Tokenizer.open(result.model.get_info("tokenizer"))
    print(lm.generate(result.model, "And God said", 100, tokenizer=tok))
"""

import os
import subprocess
from dataclasses import dataclass

import numpy as np

from . import _arrays
from . import _options as opt
from ._lib import Error, check, cstr, ffi, lib, libc, take_string
from .model import DISTRIBUTIONS, Model, choice


@dataclass
class LMReport:
    """A language model's run at every validation estimate (rw_lm_report)."""
    step: int
    steps: int
    train_loss: float
    val_loss: float
    val_bits_per_byte: float
    whole_split: bool
    lr: float
    tokens_per_second: float
    seconds: float
    sparsity: float
    updates: int
    itop_rate: float


class _TokHandle:
    def __init__(self, ptr):
        self.ptr = ptr
        self.lock = __import__("threading").Lock()  # encode is not for two threads at once

    def __del__(self):
        if getattr(self, "ptr", None) is not None:
            lib.rw_tokenizer_free(self.ptr)
            self.ptr = None


class Tokenizer:
    """Text to token ids and back: 'bytes' (256 tokens) or GPT-2's BPE."""

    def __init__(self, ptr):
        self._h = _TokHandle(ptr)

    @classmethod
    def _make(cls, fn, *args):
        out = ffi.new("rw_tokenizer **")
        check(fn(*args, out))
        return cls(out[0])

    @classmethod
    def bytes(cls):
        return cls._make(lib.rw_tokenizer_bytes)

    @classmethod
    def bpe(cls, folder):
        """GPT-2's byte-level BPE from folder/vocab.json and folder/merges.txt."""
        return cls._make(lib.rw_tokenizer_bpe, cstr(folder))

    @classmethod
    def open(cls, spec):
        """From a spec: 'bytes' or 'bpe:DIR' (what Tokenizer.spec and a
        model's get_info('tokenizer') give)."""
        return cls._make(lib.rw_tokenizer_open, cstr(spec, "a tokenizer spec"))

    @property
    def vocab(self):
        return lib.rw_tokenizer_vocab(self._h.ptr)

    @property
    def spec(self):
        return ffi.string(lib.rw_tokenizer_spec(self._h.ptr)).decode()

    def encode(self, text):
        """Token ids (int32 array) of a str (UTF-8) or bytes."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("encode takes str or bytes, got %s" % type(text).__name__)
        ids, count = ffi.new("int32_t **"), ffi.new("size_t *")
        with self._h.lock:
            check(lib.rw_tokenizer_encode(self._h.ptr, ffi.from_buffer(data), len(data), ids, count))
        try:
            return np.frombuffer(ffi.buffer(ids[0], 4 * count[0]), np.int32).copy()
        finally:
            libc.free(ids[0])

    def decode(self, ids):
        """The bytes a sequence of token ids stands for."""
        ids = _arrays.int32_tokens(ids, "ids")
        text, length = ffi.new("char **"), ffi.new("size_t *")
        check(lib.rw_tokenizer_decode(self._h.ptr, ffi.from_buffer("int32_t[]", ids), len(ids),
                                      text, length))
        try:
            return ffi.unpack(text[0], length[0])
        finally:
            libc.free(text[0])

    def __repr__(self):
        return "<rewire.lm.Tokenizer %s, %d tokens>" % (self.spec, self.vocab)


class _TextHandle:
    def __init__(self, ptr, tokenizer):
        self.ptr, self.tokenizer = ptr, tokenizer  # the tokenizer must outlive the text

    def __del__(self):
        if getattr(self, "ptr", None) is not None:
            lib.rw_text_free(self.ptr)
            self.ptr = None


def kjv_path():
    """The King James Bible of Debian's bible-kjv as one text file, dumped
    once into $XDG_CACHE_HOME/rewire (or ~/.cache/rewire), as `rewire lm`
    does."""
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.path.join(os.environ["HOME"], ".cache") if os.environ.get("HOME") else "/tmp")
    folder = os.path.join(base, "rewire")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "kjv.txt")
    if os.access(path, os.R_OK):
        return path
    if not (os.access("/usr/bin/bible", os.X_OK) and os.access("/usr/lib/bible.data", os.R_OK)):
        raise Error("text 'kjv' needs Debian's bible-kjv package (apt-get install bible-kjv); or "
                    "give a text file", "i/o")
    out = subprocess.run(["/usr/bin/bible", "-f", "-p", "/usr/lib", "gen1:1-rev22:21"],
                         capture_output=True, check=False)
    lines = out.stdout.split(b"\n")
    if out.returncode != 0 or len(lines) < 30000:
        raise Error("bible gave %d lines (status %d), expected the whole Bible"
                    % (len(lines), out.returncode), "i/o")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        for line in lines[:-1] if lines and lines[-1] == b"" else lines:
            _, sep, rest = line.partition(b" ")
            f.write((rest if sep else line) + b"\n")
    os.replace(tmp, path)
    return path


class Text:
    """A tokenized text split into training and validation tokens (the
    last val_fraction), each at least context + 1 tokens."""

    def __init__(self, ptr, tokenizer):
        self._h = _TextHandle(ptr, tokenizer)
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, path, tokenizer=None, val_fraction=0.1, context=64):
        """A text file ('kjv': the King James Bible, see kjv_path)."""
        tokenizer = tokenizer or Tokenizer.bytes()
        if path == "kjv":
            path = kjv_path()
        out = ffi.new("rw_text **")
        check(lib.rw_text_load(cstr(path), tokenizer._h.ptr, float(val_fraction), int(context), out))
        return cls(out[0], tokenizer)

    @classmethod
    def from_bytes(cls, data, tokenizer=None, val_fraction=0.1, context=64, name="<memory>"):
        tokenizer = tokenizer or Tokenizer.bytes()
        if isinstance(data, str):
            data = data.encode("utf-8")
        out = ffi.new("rw_text **")
        check(lib.rw_text_from_memory(cstr(name, "a name"), ffi.from_buffer(data), len(data),
                                      tokenizer._h.ptr, float(val_fraction), int(context), out))
        return cls(out[0], tokenizer)

    def tokens(self, split="train"):
        return lib.rw_text_tokens(self._h.ptr, _split(split))


def _split(split):
    if split in ("train", "val"):
        return int(split == "val")
    raise ValueError("split must be 'train' or 'val', got %r" % (split,))


def gpt(vocab=256, context=64, n_layer=4, n_head=4, n_embd=128, *, bias=False, sparsity=0.0,
        init="erk", seed=1, tokenizer=None):
    """A GPT (nanoGPT's layout and initialisation) whose blocks' linear maps
    are CSR at `sparsity`. With a tokenizer, vocab is its and the model
    keeps its spec (info 'tokenizer'), as `rewire lm train` does."""
    c = ffi.new("rw_gpt_config *", lib.rw_gpt_config_default())
    c.vocab = tokenizer.vocab if tokenizer is not None else int(vocab)
    c.context, c.n_layer, c.n_head, c.n_embd = int(context), int(n_layer), int(n_head), int(n_embd)
    c.bias = bool(bias)
    c.sparsity = float(sparsity)
    c.distribution = choice(init, DISTRIBUTIONS, "init")
    c.seed = int(seed)
    out = ffi.new("rw_model **")
    check(lib.rw_gpt_create(c, out))
    m = Model(out[0])
    if tokenizer is not None:
        m.set_info("tokenizer", tokenizer.spec)
    return m


def _lm_model(model):
    if not isinstance(model, Model):
        raise TypeError("expected a rewire.Model, got %s" % type(model).__name__)
    p = model._ptr()
    if not model.is_language_model:
        raise Error("the model is a classifier, not a language model", "invalid argument")
    return p


def evaluate(model, text, split="val", context=None, batch=8):
    """Loss (nats per token), bits per byte and perplexity over a split, in
    windows of `context` tokens (the model's by default)."""
    p = _lm_model(model)
    if not isinstance(text, Text):
        raise TypeError("text must be a rewire.lm.Text")
    out = ffi.new("rw_lm_eval *")
    check(lib.rw_lm_evaluate(p, text._h.ptr, _split(split), int(context or model.context),
                             int(batch), out))
    return {"loss": out.loss, "tokens": out.tokens, "bits_per_byte": out.bits_per_byte,
            "perplexity": float(np.exp(out.loss))}


def generate(model, prompt, n_new, *, temperature=1.0, top_k=0, seed=1, tokenizer=None):
    """Continues `prompt` by n_new tokens, one at a time with the KV cache.
    A prompt of token ids gives token ids (int32); a str or bytes prompt is
    encoded with `tokenizer` (default: the one the model names, or bytes)
    and the continuation comes back decoded, as str (undecodable bytes
    replaced) or bytes."""
    p = _lm_model(model)
    as_text = isinstance(prompt, (str, bytes))
    if as_text:
        if tokenizer is None:
            spec = model.get_info("tokenizer")
            tokenizer = Tokenizer.open(spec) if spec else Tokenizer.bytes()
        ids = tokenizer.encode(prompt)
    else:
        ids = _arrays.int32_tokens(prompt, "prompt")
    if len(ids) < 1:
        raise ValueError("the prompt needs at least one token")
    n_new = int(n_new)
    if n_new < 0:
        raise ValueError("n_new must be >= 0")
    out = np.zeros(n_new, np.int32)
    if n_new:
        check(lib.rw_lm_generate(p, ffi.from_buffer("int32_t[]", ids), len(ids), n_new,
                                 float(temperature), int(top_k), int(seed),
                                 ffi.from_buffer("int32_t[]", out)))
    if not as_text:
        return out
    data = tokenizer.decode(out)
    return data.decode("utf-8", "replace") if isinstance(prompt, str) else data


def train(*, model=None, progress=None, on_report=None, on_topology=None, verbose=False,
          **options):
    """`rewire lm train` as a call: a GPT on a text, AdamW with nanoGPT's
    warm-up and cosine, static sparsity, dst=... or prune='gmp'|'issp',
    validation estimates, the JSONL log, checkpoints. Options are the
    command's flags with '-' as '_' (text, tokenizer, val_fraction, layers,
    heads, dim, context, bias, sparsity, init, batch, steps, lr, min_lr,
    warmup, beta1, beta2, adam_eps, weight_decay, clip_norm, eval_every,
    eval_batches, seed, the dst and prune options) and out, log, checkpoint,
    checkpoint_every, resume, threads. `text` may also be a rewire.lm.Text
    and `model` a GPT of your own (its shape options then unused).
    Returns a RunResult whose .lm holds the whole validation split's
    evaluation."""
    from .train import _Callbacks, _Plan, _execute, _failure, _result, _split_free
    free = _split_free(options)
    resume = free.get("resume")
    text_obj = options.pop("text") if isinstance(options.get("text"), Text) else None
    given = set(options)
    cb = _Callbacks(progress, None, on_topology, on_report, verbose=verbose)
    run = None
    try:
        if resume is not None:
            if model is not None:
                raise ValueError("a resumed run's model is the checkpoint's: do not pass model")
            run_p, model_p, flags = ffi.new("rw_run **"), ffi.new("rw_model **"), ffi.new("char **")
            check(lib.rw_run_resume(cstr(resume, "resume"), 0, model_p, run_p, flags))
            run = run_p[0]
            model = Model(model_p[0])
            stored = take_string(flags[0])
            values = opt.LM.from_flags(stored.decode() if stored else None, resume)
            asked = opt.LM.resolve(options)
            for k in given:
                if asked[k] != values[k]:
                    raise ValueError("%s=%r differs from the checkpoint's %r: a resumed run keeps "
                                     "the settings it started with" % (k, asked[k], values[k]))
        else:
            values = opt.LM.resolve(options)
        if values["dim"] % values["heads"]:
            raise ValueError("heads %d does not divide dim %d" % (values["heads"], values["dim"]))
        plan = _Plan(values, given, lm=True)
        if text_obj is None:
            tok = Tokenizer.open(values["tokenizer"])
            text_obj = Text.load(values["text"], tok, values["val_fraction"], values["context"])
        tok = text_obj.tokenizer
        if resume is not None:
            plan.check_resumed(run, model._handle.ptr, resume)
        elif model is None:
            model = gpt(tok.vocab, values["context"], values["layers"], values["heads"],
                        values["dim"], bias=values["bias"], sparsity=plan.start_sparsity,
                        init=values["init"], seed=values["seed"], tokenizer=tok)
        elif not isinstance(model, Model) or not model.is_language_model:
            raise TypeError("model must be a rewire language model (rewire.lm.gpt)")
        s = ffi.new("rw_lm_schedule *", lib.rw_lm_schedule_default())
        s.context = values["context"]
        s.steps = values["steps"]
        s.warmup_steps = values["warmup"]
        s.min_lr = values["min_lr"]
        s.eval_every = values["eval_every"]
        s.eval_batches = values["eval_batches"]
        s.seed = values["seed"]
        flags = opt.LM.to_flags(values) if free.get("checkpoint") else None
        c, keep = plan.run_config(free.get("out"), free.get("log"), free.get("checkpoint"),
                                  free.get("checkpoint_every", 0), flags, cb, lm_schedule=s)
        if resume is not None:
            check(lib.rw_run_configure(run, c))
        else:
            if plan.dst_active or plan.prune_active:
                model._topology_change("training with dynamic sparsity or pruning")
            run_p = ffi.new("rw_run **")
            check(lib.rw_run_new(model._handle.ptr, c, run_p))
            run = run_p[0]
        cb.run = run
        res, fin = ffi.new("rw_run_result *"), ffi.new("rw_lm_eval *")

        def call():
            return lib.rw_run_train_text(run, text_obj._h.ptr, res, fin)

        rc = _execute(model._handle, run, call, free.get("threads"))
        if cb.error is not None:
            raise cb.error
        if rc:
            raise _failure(rc, res)
        return _result(model, res, False, lm={"loss": fin.loss, "tokens": fin.tokens,
                                              "bits_per_byte": fin.bits_per_byte})
    finally:
        if run is not None:
            lib.rw_run_free(run)
