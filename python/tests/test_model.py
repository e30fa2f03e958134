"""Models: making, files, info, parameters as views of the model's own
memory, prediction as `rewire eval` does it (stored normalisation, row
major), evaluation, N:M, threads."""
import json
import tracemalloc

import numpy as np
import pytest

import rewire
from conftest import needs_cli, random_x, run_cli


def test_mlp_info_and_files(tmp_path):
    m = rewire.Model.mlp([784, 300, 100, 10], 0.9, seed=3, dense_last=True,
                         normalization=(0.25, 0.5))
    assert (m.inputs, m.classes) == (784, 10)
    assert m.sparsity == pytest.approx(0.9, abs=2e-3)
    kinds = [l.kind for l in m.layers]
    assert kinds == ["sparse", "sparse", "dense"]
    info = m.info()
    assert info["input_mean"] == 0.25 and info["input_std"] == 0.5
    assert info["nonzeros"] == sum(l.nonzeros for l in m.layers)
    m.set_info("note", "hello")
    m.save(tmp_path / "m.safetensors")
    m2 = rewire.Model.load(tmp_path / "m.safetensors")
    assert m2.get_info("note") == "hello" and m2.get_info("absent") is None
    x = random_x(7)
    assert np.array_equal(m.predict(x), m2.predict(x))
    assert "fc1 784->300 sparse" in repr(m2)
    with pytest.raises(ValueError, match="init"):
        rewire.Model.mlp([4, 2], 0.5, init="erdos")
    with pytest.raises(ValueError, match="std"):
        m.normalization = (0, 0)


@needs_cli
def test_info_matches_the_command(tmp_path):
    m = rewire.Model.mlp([784, 64, 10], 0.8, seed=1)
    m.save(tmp_path / "m")
    cli = json.loads(run_cli("info", "--json", tmp_path / "m").stdout)
    assert cli["sparsity"] == pytest.approx(m.sparsity)
    assert [l["nonzeros"] for l in cli["layers"]] == [l.nonzeros for l in m.layers]


def test_parameters_share_the_models_memory():
    m = rewire.Model.mlp([20, 16, 5], 0.5, seed=1, dense_last=True)
    ps = m.parameters()
    assert [p.name for p in ps] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    w, b2 = ps[0], ps[3]
    assert w.storage == "csr" and w.shape == (16, 20) and ps[2].storage == "dense"
    assert ps[2].values.shape == (5, 16) and b2.values.shape == (5,)
    assert w.indptr[-1] == w.nnz == len(w.values) == len(w.indices)
    fan_in, fan_out = m.fan(0)
    assert np.array_equal(np.diff(w.indptr), fan_in)
    assert np.array_equal(np.bincount(w.indices, minlength=20), fan_out)
    assert not w.indptr.flags.writeable and w.values.flags.writeable
    # Writes reach the model: zero weights, the bias alone decides.
    x = random_x(3, 20)
    for p in ps:
        p.values[...] = 0
    b2.values[2] = 5
    assert (m.predict(x).argmax(1) == 2).all()
    assert np.allclose(m.logits(x), [0, 0, 5, 0, 0])
    # The same memory twice.
    assert np.shares_memory(m.parameter("fc1.weight").values, w.values)
    d = w.to_dense()
    assert d.shape == (16, 20) and (d != 0).sum() <= w.nnz


def test_predict_applies_the_stored_normalisation():
    """The model's function written out in numpy (float64) from its views."""
    m = rewire.Model.mlp([30, 20, 4], 0.6, seed=5, activation="tanh", normalization=(0.3, 0.2))
    x = random_x(9, 30)
    h = (x.astype(np.float64) - 0.3) / np.float32(0.2)
    p = {q.name: q for q in m.parameters()}
    h = np.tanh(h @ p["fc1.weight"].to_dense().T.astype(np.float64) + p["fc1.bias"].values)
    z = h @ p["fc2.weight"].to_dense().T.astype(np.float64) + p["fc2.bias"].values
    assert np.abs(m.logits(x) - z).max() < 1e-5
    probs = np.exp(z - z.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    assert np.abs(m.predict(x) - probs).max() < 1e-6
    # One sample alone (the matrix-vector path) agrees with it in a batch.
    assert np.abs(m.predict(x[4:5]) - m.predict(x)[4]).max() < 1e-6


@needs_cli
def test_predictions_give_the_accuracy_of_rewire_eval(small, small_sets, tmp_path):
    train, test = small_sets
    r = rewire.train(data=small, hidden=[64], sparsity=0.9, epochs=1, batch=100,
                     out=str(tmp_path / "m"))
    cli = json.loads(run_cli("eval", tmp_path / "m", "--data", small, "--json").stdout)
    probs = r.model.predict(test.x)  # pixels in [0, 1], as the files give them
    assert probs.shape == (1000, 10)
    acc = (probs.argmax(1) == test.y).mean()
    assert acc == pytest.approx(cli["accuracy"]) == pytest.approx(r.model.evaluate(test).accuracy)
    assert r.model.evaluate(test).loss == pytest.approx(cli["loss"], rel=1e-6)


def test_predict_reads_the_input_where_it_lies(mlp):
    """tracemalloc sees numpy's allocations: a 20 MB input costs only the output."""
    x = random_x(6400)
    mlp.predict(x[:10])
    tracemalloc.start()
    out = mlp.predict(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert out.nbytes <= peak < out.nbytes + 64 * 1024


def test_datasets(tmp_path):
    x = random_x(50, 6)
    y = np.arange(50) % 3
    d = rewire.Dataset.from_numpy(x, y)
    assert (len(d), d.features, d.classes) == (50, 6, 3)
    assert np.array_equal(d.x, x) and np.array_equal(d.y, y)
    assert not d.x.flags.writeable
    a, b = d.split(0.2, seed=1)
    assert (len(a), len(b)) == (40, 10)
    mean, std = d.feature_stats()
    assert np.allclose(mean, x.mean(0), atol=1e-6)
    with pytest.raises(TypeError, match="float32"):
        rewire.Dataset.from_numpy(x.astype(np.float64), y)
    np.savetxt(tmp_path / "t.csv", np.c_[x, y], delimiter=",", fmt="%.8g")
    c = rewire.Dataset.load_csv(tmp_path / "t.csv")
    assert np.allclose(c.x, x) and c.class_name(1) == "1"
    xv = d.x
    d.close()
    assert xv.sum() == pytest.approx(x.sum(), rel=1e-6)  # the view keeps the data alive


def test_nm_and_threads():
    m = rewire.Model.mlp([32, 16, 4], 0.0, seed=1)
    x = random_x(5, 32)
    before = m.predict(x)
    m.to_nm(2, 4, layer=0)
    assert m.layers[0].nm == (2, 4) and m.layers[0].kind == "nm"
    assert m.parameter("fc1.weight").nnz == 16 * 16
    n = rewire.get_num_threads()
    rewire.set_num_threads(1)
    one = m.predict(x)
    rewire.set_num_threads(n)
    assert np.array_equal(one, m.predict(x))
    assert not np.array_equal(before, one)


def test_long_calls_release_the_gil(mlp):
    """While one thread predicts on a large batch, another runs Python."""
    import threading
    x = random_x(60000)
    mlp.predict(x[:10])
    done = threading.Event()
    t = threading.Thread(target=lambda: (mlp.predict(x), done.set()))
    spins = 0
    t.start()
    while not done.is_set():
        spins += 1
    t.join()
    assert spins > 1000
