"""Training from Python against `rewire train`: the same options give the
same model file (byte for byte) and the same JSONL (timings aside);
checkpoints resume with either; callbacks see every step, epoch and
topology update; options are checked as the command checks its flags."""
import json
import subprocess
import time

import pytest

import rewire
from conftest import (CLI, jsonl_without_timings, needs_cli, run_cli, same_bytes)

# Threads pinned: importing torch (test_torch) sets OpenMP's count to its own,
# and dense layers (OpenBLAS) may change in the last bits with it.
RIGL = dict(hidden=[300, 100], sparsity=0.98, dst="rigl", update_every=20, epochs=2, batch=64,
            seed=3, threads=2)
RIGL_FLAGS = ["--threads", "2", "--hidden", "300,100", "--sparsity", "0.98", "--dst", "rigl",
              "--update-every", "20", "--epochs", "2", "--batch", "64", "--seed", "3"]


@needs_cli
def test_rigl_98_same_bytes_and_log_as_the_command(small, tmp_path):
    py_model, py_log = tmp_path / "py.safetensors", tmp_path / "py.jsonl"
    cli_model, cli_log = tmp_path / "cli.safetensors", tmp_path / "cli.jsonl"
    r = rewire.train(data=small, out=str(py_model), log=str(py_log), **RIGL)
    run_cli("train", "--data", small, *RIGL_FLAGS, "--out", cli_model, "--log", cli_log, "--quiet")
    assert same_bytes(py_model, cli_model)
    py, cli = jsonl_without_timings(py_log), jsonl_without_timings(cli_log)
    assert py == cli
    assert sum(1 for o in py if o.get("event") == "topology") == r.updates > 0
    assert abs(r.sparsity - 0.98) < 1e-3
    assert r.model.sparsity == pytest.approx(r.sparsity)
    assert r.steps == 2 * 47


@needs_cli
@pytest.mark.parametrize("extra,flags", [
    (dict(prune="gmp", sparsity=0.9, update_every=10, hidden=[64]),
     ["--prune", "gmp", "--sparsity", "0.9", "--update-every", "10", "--hidden", "64"]),
    (dict(nm="2:4", nm_method="decay", hidden=[64], optimizer="adamw", lr=0.002, val_split=0.1),
     ["--nm", "2:4", "--nm-method", "decay", "--hidden", "64", "--optimizer", "adamw", "--lr",
      "0.002", "--val-split", "0.1"]),
    (dict(dst="granet", sparsity=0.9, hidden=[64], layer_norm=True, update_every=15),
     ["--dst", "granet", "--sparsity", "0.9", "--hidden", "64", "--layer-norm", "--update-every",
      "15"]),
])
def test_other_methods_match_the_command(small, tmp_path, extra, flags):
    base = dict(epochs=2, batch=100, seed=5, train_limit=1500, test_limit=300, threads=2)
    base_flags = ["--threads", "2", "--epochs", "2", "--batch", "100", "--seed", "5", "--train-limit", "1500",
                  "--test-limit", "300"]
    rewire.train(data=small, out=str(tmp_path / "p"), log=str(tmp_path / "p.jsonl"), **base, **extra)
    run_cli("train", "--data", small, *base_flags, *flags, "--out", tmp_path / "c", "--log",
            tmp_path / "c.jsonl", "--quiet")
    assert same_bytes(tmp_path / "p", tmp_path / "c")
    assert jsonl_without_timings(tmp_path / "p.jsonl") == jsonl_without_timings(tmp_path / "c.jsonl")


@needs_cli
def test_input_budget_and_feature_normalization_match_the_command(small, tmp_path):
    """normalize='feature' and input-level DST: the command's bytes and log;
    a Python checkpoint stopped after epoch 1 resumes in the command to the
    same model, and the command's flags read back in Python."""
    opts = dict(hidden=[64], sparsity=0.9, dst="rigl", update_every=10, epochs=2, batch=100,
                seed=4, train_limit=1500, test_limit=300, threads=2, normalize="feature",
                input_budget=100, input_select="importance", input_end=0.4)
    flags = ["--hidden", "64", "--sparsity", "0.9", "--dst", "rigl", "--update-every", "10",
             "--epochs", "2", "--batch", "100", "--seed", "4", "--train-limit", "1500",
             "--test-limit", "300", "--threads", "2", "--normalize", "feature", "--input-budget",
             "100", "--input-select", "importance", "--input-end", "0.4"]
    r = rewire.train(data=small, out=str(tmp_path / "p"), log=str(tmp_path / "p.jsonl"), **opts)
    out = run_cli("train", "--data", small, *flags, "--out", tmp_path / "c", "--log",
                  tmp_path / "c.jsonl", "--quiet").stdout
    assert r.inputs_kept == 100 and "inputs_kept=100" in out
    assert same_bytes(tmp_path / "p", tmp_path / "c")
    assert jsonl_without_timings(tmp_path / "p.jsonl") == jsonl_without_timings(tmp_path / "c.jsonl")
    ck = tmp_path / "py.ckpt"
    r = rewire.train(data=small, checkpoint=str(ck), on_epoch=lambda e: e.epoch == 1, **opts)
    assert r.stopped
    run_cli("train", "--resume", ck, "--data", small, "--out", tmp_path / "cli_resumed", "--quiet")
    assert same_bytes(tmp_path / "p", tmp_path / "cli_resumed")
    with pytest.raises(ValueError, match="input_budget=100 differs from the checkpoint's|"
                       "differs from the checkpoint"):
        rewire.train(resume=str(ck), input_budget=50)
    r = rewire.train(resume=str(ck), out=str(tmp_path / "py_resumed"))
    assert r.inputs_kept == 100
    assert same_bytes(tmp_path / "p", tmp_path / "py_resumed")


def test_input_options_are_checked(small):
    with pytest.raises(ValueError, match="need input_budget"):
        rewire.train(data=small, input_select="random")
    with pytest.raises(ValueError, match="not with prune, nm or dense_first"):
        rewire.train(data=small, input_budget=10, prune="gmp")
    with pytest.raises(ValueError, match="input_start 0.6 is after input_end 0.5"):
        rewire.train(data=small, input_budget=10, dst="rigl", input_start=0.6)
    with pytest.raises(ValueError, match="normalize"):
        rewire.train(data=small, normalize="minmax")


@needs_cli
def test_checkpoints_resume_with_either(small, tmp_path):
    """A run stopped by on_epoch after epoch 1, resumed by the command; and
    the command's checkpoint resumed from Python: the uninterrupted bytes."""
    opts = dict(RIGL, epochs=3)
    whole = tmp_path / "whole"
    rewire.train(data=small, out=str(whole), **opts)
    ck = tmp_path / "py.ckpt"
    r = rewire.train(data=small, checkpoint=str(ck), on_epoch=lambda e: e.epoch == 1, **opts)
    assert r.stopped and r.checkpoint_step == 47
    run_cli("train", "--resume", ck, "--data", small, "--out", tmp_path / "cli_resumed", "--quiet")
    assert same_bytes(whole, tmp_path / "cli_resumed")

    # The command checkpointing every step, killed once a checkpoint is on
    # disk: Python resumes it to the same bytes.
    ck2 = tmp_path / "cli.ckpt"
    args = [CLI, "train", "--data", small, *RIGL_FLAGS[:-6], "--epochs", "3", "--batch", "64",
            "--seed", "3", "--checkpoint", str(ck2), "--checkpoint-every", "1", "--quiet"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not ck2.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    p.kill()
    p.wait()
    assert ck2.exists()
    r = rewire.train(resume=str(ck2), out=str(tmp_path / "py_resumed"))
    assert r.steps == 141 and not r.stopped
    assert same_bytes(whole, tmp_path / "py_resumed")
    # A resumed run keeps its settings (a value equal to the stored one is fine).
    with pytest.raises(ValueError, match="differs from the checkpoint"):
        rewire.train(resume=str(ck2), epochs=7)
    assert rewire.train(resume=str(ck2), epochs=3).steps == 141


def test_callbacks_see_steps_epochs_and_updates(small, tmp_path):
    steps, epochs, updates = [], [], []
    r = rewire.train(data=small, train_limit=640, test_limit=200, hidden=[32], sparsity=0.9,
                     dst="set", update_every=4, epochs=2, batch=64, log=str(tmp_path / "l"),
                     progress=lambda p: steps.append(p.step), on_epoch=epochs.append,
                     on_topology=updates.append)
    assert steps == list(range(1, 21))
    assert [e.epoch for e in epochs] == [1, 2]
    assert epochs[-1].test.accuracy == pytest.approx(r.test_accuracy)
    assert epochs[-1].test.count == 200
    lines = [json.loads(l) for l in open(tmp_path / "l")]
    topo = [l for l in lines if l.get("event") == "topology"]
    assert len(updates) == len(topo) == r.updates > 0
    assert [u.step for u in updates] == [t["step"] for t in topo]
    assert updates[0].dropped == topo[0]["dropped"] and updates[0].grown == topo[0]["grown"]


def test_trainer_on_a_model_and_data_of_your_own(small_sets, tmp_path):
    train, test = small_sets
    m = rewire.Model.mlp([784, 64, 10], 0.9, seed=1, normalization=train.stats())
    w = m.parameter("fc1.weight")
    before = w.values.copy()
    view = w.values
    t = rewire.Trainer(m, epochs=1, batch=100, lr=0.05)
    r = t.fit(train, test)
    assert r.model is m and r.steps == 30
    # Static sparse training moves no array: the view shows the trained weights.
    assert (view != before).any() and (view == m.parameter("fc1.weight").values).all()
    assert m.evaluate(test).accuracy == pytest.approx(r.test_accuracy)
    # With dynamic sparsity the arrays move: refused while views exist.
    t2 = rewire.Trainer(m, epochs=1, batch=100, dst="rigl", update_every=5)
    with pytest.raises(rewire.Error, match="numpy view"):
        t2.fit(train, test)
    del view
    r2 = t2.fit(train, test)
    assert r2.updates > 0
    with pytest.raises(rewire.Error, match="stale"):
        w.values


def test_trainer_resume(small_sets, tmp_path):
    train, test = small_sets
    ck = tmp_path / "t.ckpt"

    def make():
        return rewire.Model.mlp([784, 48, 10], 0.9, seed=4, normalization=(0.3, 0.35))

    whole = rewire.Trainer(make(), epochs=2, batch=100, dst="rigl", update_every=7).fit(train, test)
    whole.model.save(tmp_path / "whole")
    stopped = rewire.Trainer(make(), epochs=2, batch=100, dst="rigl", update_every=7,
                             checkpoint=str(ck), checkpoint_every=10,
                             on_epoch=lambda e: True).fit(train, test)
    assert stopped.stopped and stopped.checkpoint_step == 30
    t = rewire.Trainer.resume(str(ck), out=str(tmp_path / "resumed"))
    assert t.position() == (1, 30)
    r = t.fit(train, test)
    assert r.steps == 60
    assert same_bytes(tmp_path / "whole", tmp_path / "resumed")


def test_options_are_checked(small):
    with pytest.raises(TypeError, match="unknown option"):
        rewire.train(data=small, epohcs=3)
    with pytest.raises(ValueError, match=r"sparsity .*--sparsity.*\[0, 0.999999\]"):
        rewire.train(data=small, sparsity=1.5)
    with pytest.raises(ValueError, match="dst"):
        rewire.train(data=small, dst="nope")
    with pytest.raises(ValueError, match="nm cannot be used with sparsity"):
        rewire.train(data=small, nm="2:4", sparsity=0.5)
    with pytest.raises(ValueError, match="does not combine"):
        rewire.train(data=small, prune="gmp", dst="rigl")
    with pytest.raises(ValueError, match="checkpoint_every needs checkpoint"):
        rewire.train(data=small, epochs=1, hidden=[8], checkpoint_every=3)
    with pytest.raises(rewire.Error, match="no-such-folder"):
        rewire.train(data="/no-such-folder", epochs=1)
    with pytest.raises(rewire.Error, match="more than the limit"):
        rewire.train(data=small, hidden=[4000, 4000], max_memory="1M")
    with pytest.raises(TypeError, match="True or False"):
        rewire.train(data=small, nesterov="yes")


def test_prune_one_shot(small_sets):
    train, test = small_sets
    m = rewire.train(data=SMALL_DIR(), hidden=[64], sparsity=0, epochs=1, batch=100).model
    acc = m.evaluate(test).accuracy
    rewire.prune(m, 0.8)
    assert m.sparsity == pytest.approx(0.8, abs=1e-3)
    assert all(l.sparse for l in m.layers)
    assert m.evaluate(test).accuracy > acc - 0.15
    rewire.prune(m, 0.9, criterion="wanda", calibration=train, calibration_count=200)
    assert m.sparsity == pytest.approx(0.9, abs=1e-3)
    with pytest.raises(rewire.Error, match="global"):
        rewire.prune(m, 0.95, criterion="wanda", scope="global", calibration=train)


def SMALL_DIR():
    from conftest import SMALL
    return SMALL
