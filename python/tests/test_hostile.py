"""Hostile use: wrong shapes and dtypes, closed models, callbacks that
raise, Ctrl-C during training (the run stops at the next step, the
checkpoint on disk whole and resumable to the bytes of a run never
stopped), broken files, a model in use by a run."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import rewire
from conftest import REPO, random_x, same_bytes

OPTS = dict(hidden=[64, 32], sparsity=0.95, dst="rigl", update_every=10, epochs=2, batch=64,
            seed=7)


@pytest.fixture(scope="module")
def whole(small, tmp_path_factory):
    """The model of the run never stopped."""
    path = tmp_path_factory.mktemp("whole") / "whole.safetensors"
    rewire.train(data=small, out=str(path), **OPTS)
    return path


def test_wrong_inputs_are_refused_with_what_was_expected(mlp):
    x = random_x(4)
    with pytest.raises(TypeError, match="float64.*float32"):
        mlp.predict(x.astype(np.float64))
    with pytest.raises(TypeError, match="int32.*float32"):
        mlp.predict(x.astype(np.int32))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        mlp.predict(x.tolist())
    with pytest.raises(ValueError, match="not C-contiguous"):
        mlp.predict(np.asfortranarray(x))
    with pytest.raises(ValueError, match="not C-contiguous"):
        mlp.predict(random_x(4, 1568)[:, ::2])
    with pytest.raises(ValueError, match="783 features .* takes 784"):
        mlp.predict(random_x(4, 783))
    with pytest.raises(ValueError, match=r"\[batch, 784\].*x\[None, :\]"):
        mlp.predict(x[0])
    with pytest.raises(ValueError, match="shape"):
        mlp.predict(x.reshape(2, 2, 784))
    assert mlp.predict(x[:0]).shape == (0, 10)
    ro = x.copy()
    ro.flags.writeable = False
    assert mlp.predict(ro).shape == (4, 10)  # read-only is fine: it is only read


def test_closed_models(mlp, tmp_path):
    w = mlp.parameter("fc1.weight")
    values = w.values
    kept = values.copy()
    mlp.close()
    mlp.close()
    assert mlp.closed and "closed" in repr(mlp)
    for call in (lambda: mlp.predict(random_x(1)), lambda: mlp.save(tmp_path / "m"),
                 lambda: mlp.parameters(), lambda: mlp.info(), lambda: w.values,
                 lambda: rewire.Trainer(mlp).fit(None, None)):
        with pytest.raises((rewire.Error, TypeError), match="closed|Dataset"):
            call()
    # A view taken before close keeps the memory alive.
    assert (values == kept).all()
    with rewire.Model.mlp([4, 3], 0.5) as m:
        m.predict(random_x(2, 4))
    assert m.closed


def test_library_errors_carry_its_message(tmp_path):
    with pytest.raises(rewire.Error) as e:
        rewire.Model.load(tmp_path / "missing.safetensors")
    assert "missing.safetensors" in str(e.value) and e.value.status == "i/o error"
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}        ")
    with pytest.raises(rewire.Error, match="bad.safetensors") as e:
        rewire.Model.load(bad)
    assert e.value.status == "malformed input"
    with pytest.raises(rewire.Error, match="layer size 1 is 0, expected 1 to"):
        rewire.Model.mlp([784, 0, 10])
    gpt = rewire.lm.gpt(n_layer=1, n_head=2, n_embd=16, context=8)
    with pytest.raises(rewire.Error, match="language model"):
        gpt.predict(random_x(1, 1))


def _checkpoint_resumes_to(ck, whole, tmp_path):
    assert rewire.Model.load(ck).sparsity == pytest.approx(0.95, abs=1e-3)  # loads whole
    r = rewire.train(resume=str(ck), out=str(tmp_path / "resumed"))
    assert r.steps == 94 and not r.stopped
    assert same_bytes(whole, tmp_path / "resumed")


@pytest.mark.parametrize("where", ["progress", "on_epoch", "on_topology"])
def test_callbacks_that_raise_stop_the_run(small, whole, tmp_path, where):
    ck = tmp_path / "ck"
    seen = []

    def bad(event):
        seen.append(event)
        step = getattr(event, "step", 0)
        if where != "progress" or step == 30:
            raise ZeroDivisionError("from the callback")

    with pytest.raises(ZeroDivisionError, match="from the callback"):
        rewire.train(data=small, checkpoint=str(ck), checkpoint_every=0, **{where: bad}, **OPTS)
    # The update after step 10 runs between steps: the run stops after the next.
    stop_step = {"progress": 30, "on_epoch": 47, "on_topology": 11}[where]
    assert os.path.exists(ck)
    # The run stopped after the step in progress and checkpointed there.
    model = rewire.Model.load(ck)
    assert model.sparsity > 0.9
    t = rewire.Trainer.resume(str(ck))
    assert t.position()[1] == stop_step
    t.close()
    _checkpoint_resumes_to(ck, whole, tmp_path)


def test_ctrl_c_stops_at_the_next_step(small, whole, tmp_path):
    """A real SIGINT, sent from inside the run as a terminal would send it."""
    ck = tmp_path / "ck"
    steps = []

    def progress(p):
        steps.append(p.step)
        if p.step == 25:
            os.kill(os.getpid(), signal.SIGINT)
        if p.step >= 25:
            # Steps of 50 ms from here: the main thread, which turns the
            # signal into KeyboardInterrupt and asks the run to stop, gets
            # the CPU even on a loaded machine before the run is far on.
            time.sleep(0.05)

    t0 = time.time()
    with pytest.raises(KeyboardInterrupt):
        rewire.train(data=small, checkpoint=str(ck), progress=progress, **OPTS)
    assert time.time() - t0 < 30
    assert 25 <= steps[-1] <= 27 and steps[-1] < 94
    tr = rewire.Trainer.resume(str(ck))
    assert tr.position()[1] == steps[-1]
    tr.close()
    _checkpoint_resumes_to(ck, whole, tmp_path)


def test_ctrl_c_in_a_python_process(small, whole, tmp_path):
    """The user's case: a script training, SIGINT from outside."""
    ck = tmp_path / "ck"
    script = textwrap.dedent("""
        import sys, rewire
        rewire.train(data=sys.argv[1], checkpoint=sys.argv[2], checkpoint_every=5,
                     hidden=[64, 32], sparsity=0.95, dst="rigl", update_every=10, epochs=2000,
                     batch=64, seed=7)
    """)
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "python") + os.pathsep +
               os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen([sys.executable, "-c", script, small, str(ck)], env=env,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not ck.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.01)
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    try:
        err = p.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("the run did not stop on SIGINT")
    assert p.returncode != 0 and "KeyboardInterrupt" in err
    t = rewire.Trainer.resume(str(ck))
    assert t.position()[1] > 0
    t.close()


def test_a_model_in_training_is_not_touched_meanwhile(small_sets):
    train, test = small_sets
    m = rewire.Model.mlp([784, 32, 10], 0.9)
    errors = []

    def progress(p):
        if p.step == 3:
            for call in (lambda: m.predict(random_x(1)), m.close, m.parameters):
                try:
                    call()
                except rewire.Error as e:
                    errors.append(str(e))

    rewire.Trainer(m, epochs=1, batch=300, progress=progress).fit(train, test)
    assert len(errors) == 3 and all("training" in e for e in errors)
    assert m.predict(random_x(1)).shape == (1, 10)


def test_stale_parameters_and_views_across_topology_changes(mlp):
    w = mlp.parameter("fc2.weight")
    v = w.values
    with pytest.raises(rewire.Error, match="1 numpy view"):
        mlp.to_nm(2, 4)
    assert not v.flags.owndata
    with pytest.raises(ValueError, match="read-only"):
        w.indices[0] = 3
    del v
    mlp.to_nm(2, 4, layer=1)
    with pytest.raises(rewire.Error, match="stale"):
        w.values
    w = mlp.parameter("fc2.weight")
    assert w.storage == "nm" and w.nm == (2, 4) and w.offsets.max() < 4
