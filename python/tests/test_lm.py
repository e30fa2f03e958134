"""rewire.lm: tokenizers, texts, a GPT trained from Python against
`rewire lm train` (the same bytes and log), evaluation, generation, a
stopped run resumed."""
import os

import numpy as np
import pytest

import rewire
import rewire.lm as lm
from conftest import REPO, jsonl_without_timings, needs_cli, run_cli, same_bytes

WORDS = ["the ", "rain ", "in ", "spain ", "falls ", "mainly ", "on ", "plain. ", "\n"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = np.random.default_rng(5)
    text = "".join(WORDS[i] for i in rng.integers(0, len(WORDS), 1500))
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text(text)
    return path


OPTS = dict(layers=1, heads=2, dim=16, context=16, batch=4, steps=30, warmup=3, eval_every=10,
            eval_batches=2, sparsity=0.5, dst="rigl", update_every=5, lr=3e-3, threads=2)
FLAGS = ["--threads", "2", "--layers", "1", "--heads", "2", "--dim", "16", "--context", "16", "--batch", "4",
         "--steps", "30", "--warmup", "3", "--eval-every", "10", "--eval-batches", "2",
         "--sparsity", "0.5", "--dst", "rigl", "--update-every", "5", "--lr", "3e-3"]


def test_tokenizers():
    t = lm.Tokenizer.bytes()
    assert t.vocab == 256 and t.spec == "bytes"
    ids = t.encode("héllo")
    assert ids.dtype == np.int32 and len(ids) == 6
    assert t.decode(ids) == "héllo".encode()
    with pytest.raises(rewire.Error, match="vocab.json"):
        lm.Tokenizer.bpe(os.path.join(REPO, "tests", "data", "text", "no-such-folder"))
    assert lm.Tokenizer.open("bytes").vocab == 256
    with pytest.raises(rewire.Error):
        lm.Tokenizer.open("nonsense")
    with pytest.raises(TypeError, match="int32"):
        t.decode(np.array([1, 2], np.int64))


@needs_cli
def test_train_matches_the_command(corpus, tmp_path):
    r = lm.train(text=str(corpus), out=str(tmp_path / "py"), log=str(tmp_path / "py.jsonl"), **OPTS)
    run_cli("lm", "train", "--text", corpus, *FLAGS, "--out", tmp_path / "cli", "--log",
            tmp_path / "cli.jsonl", "--quiet")
    assert same_bytes(tmp_path / "py", tmp_path / "cli")
    assert jsonl_without_timings(tmp_path / "py.jsonl") == jsonl_without_timings(tmp_path / "cli.jsonl")
    assert r.steps == 30 and r.updates > 0 and r.lm["loss"] > 0
    m = r.model
    assert m.is_language_model and m.context == 16 and m.get_info("tokenizer") == "bytes"
    text = lm.Text.load(str(corpus), context=16)
    e = lm.evaluate(m, text)
    assert e["loss"] == pytest.approx(r.lm["loss"], rel=1e-6)
    # Greedy generation is deterministic, and so is the command's.
    ids = lm.generate(m, [116, 104, 101], 20, temperature=0)
    assert ids.dtype == np.int32 and len(ids) == 20
    assert np.array_equal(ids, lm.generate(m, np.array([116, 104, 101], np.int32), 20,
                                           temperature=0))
    s = lm.generate(m, "the", 20, temperature=0)
    assert s == bytes(ids.astype(np.uint8)).decode("utf-8", "replace")
    cli = run_cli("lm", "generate", tmp_path / "py", "--prompt", "the", "--tokens", "20",
                  "--temperature", "0").stdout
    assert s in cli


def test_own_model_text_stop_and_resume(corpus, tmp_path):
    text = lm.Text.from_bytes(corpus.read_bytes(), context=16)
    assert text.tokens("train") > text.tokens("val") > 16
    opts = dict(OPTS)
    for k in ("layers", "heads", "dim"):
        opts.pop(k)
    whole = lm.train(text=text, out=str(tmp_path / "whole"), **dict(OPTS))
    reports = []

    def progress(p):
        if p.step == 12:
            raise RuntimeError("enough")

    ck = tmp_path / "ck"
    with pytest.raises(RuntimeError, match="enough"):
        lm.train(text=text, checkpoint=str(ck), progress=progress, on_report=reports.append,
                 **dict(OPTS))
    assert [r.step for r in reports] == [10]
    r = lm.train(text=text, resume=str(ck), out=str(tmp_path / "resumed"))
    assert r.steps == 30
    assert same_bytes(tmp_path / "whole", tmp_path / "resumed")
    assert whole.steps == 30
    # A model of your own.
    g = lm.gpt(n_layer=1, n_head=2, n_embd=16, context=16, sparsity=0.8, seed=3,
               tokenizer=text.tokenizer)
    r = lm.train(model=g, text=text, steps=5, eval_every=0, batch=2, context=16)
    assert r.model is g and r.steps == 5
    with pytest.raises(rewire.Error, match="classifier"):
        lm.generate(rewire.Model.mlp([4, 2]), [1], 3)
    with pytest.raises(ValueError, match="divide"):
        lm.train(text=text, heads=3, dim=16)
