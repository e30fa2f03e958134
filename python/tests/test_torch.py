"""PyTorch round trips: a rewire model exported gives the same logits and
imports back to the same file; a PyTorch MLP masked by
torch.nn.utils.prune imports as CSR layers with the same accuracy."""

import numpy as np
import pytest

import rewire

torch = pytest.importorskip("torch")


def test_sparse_model_round_trip(small, small_sets, tmp_path):
    train, test = small_sets
    m = rewire.train(data=small, hidden=[300, 100], sparsity=0.95, dst="rigl", update_every=20,
                     epochs=1, batch=64).model
    seq = m.to_torch()
    fc = [mod for mod in seq if isinstance(mod, torch.nn.Linear)]
    assert [f.weight.layout for f in fc] == [torch.sparse_csr] * 3
    with torch.no_grad():
        theirs = seq(torch.from_numpy(np.array(test.x))).numpy()
    ours = m.logits(test.x)
    assert np.abs(theirs - ours).max() <= 1e-6
    back = rewire.from_torch(seq)
    m.save(tmp_path / "a")
    back.save(tmp_path / "b")
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    # A parameter alone.
    w = m.parameter("fc2.weight")
    t = w.to_torch()
    assert t.layout == torch.sparse_csr and t.shape == (100, 300)
    assert np.array_equal(t.to_dense().numpy(), w.to_dense())


def test_layer_norm_gelu_dense_round_trip(tmp_path):
    m = rewire.Model.mlp([50, 40, 30, 6], 0.3, seed=2, layer_norm=True, activation="gelu",
                         dense_first=True, normalization=(0.5, 0.25))
    seq = m.to_torch()
    x = np.random.default_rng(1).random((20, 50), dtype=np.float32)
    with torch.no_grad():
        assert np.abs(seq(torch.from_numpy(x)).numpy() - m.logits(x)).max() <= 1e-5
    m.save(tmp_path / "a")
    rewire.from_torch(seq).save(tmp_path / "b")
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_masked_torch_mlp_imports_with_its_accuracy(small_sets):
    train, test = small_sets
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(),
                              torch.nn.Linear(128, 10))
    x, y = torch.from_numpy(np.array(train.x)), torch.from_numpy(train.y.astype(np.int64))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(2):
        for i in range(0, len(x), 100):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[i:i + 100]), y[i:i + 100]).backward()
            opt.step()
    import torch.nn.utils.prune as tprune
    for mod in (net[0], net[2]):
        tprune.l1_unstructured(mod, "weight", amount=0.9)
    tx = torch.from_numpy(np.array(test.x))
    with torch.no_grad():
        theirs = net(tx).numpy()
    torch_acc = (theirs.argmax(1) == test.y).mean()
    m = rewire.from_torch(net)
    assert [l.kind for l in m.layers] == ["sparse", "sparse"]
    assert m.sparsity == pytest.approx(0.9, abs=1e-3)
    assert np.abs(m.logits(test.x) - theirs).max() < 1e-5
    assert m.evaluate(test).accuracy == torch_acc
    # A dense one stays dense.
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10), torch.nn.Softmax(1))
    assert [l.kind for l in rewire.from_torch(plain).layers] == ["dense"]


def test_what_from_torch_refuses():
    nn = torch.nn
    with pytest.raises(TypeError, match="Conv2d"):
        rewire.from_torch(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(4, 2)))
    with pytest.raises(TypeError, match="last Linear has an activation"):
        rewire.from_torch(nn.Sequential(nn.Linear(4, 3), nn.ReLU()))
    with pytest.raises(TypeError, match="GELU"):
        rewire.from_torch(nn.Sequential(nn.Linear(4, 3), nn.GELU(), nn.Linear(3, 2)))
    with pytest.raises(rewire.Error, match="takes 3|reads 3|inputs"):
        rewire.from_torch(nn.Sequential(nn.Linear(4, 3), nn.Linear(5, 2)))
    with pytest.raises(TypeError, match="Sequential"):
        rewire.from_torch(nn.Linear(4, 2))


def test_feature_normalization_and_kept_inputs_round_trip(small, small_sets, tmp_path):
    """A model trained with normalize='feature' and input_budget: to_torch
    reads only the kept inputs and standardises each on its own (a constant
    one gives 0), with the model's logits; from_torch gives the model back."""
    train, test = small_sets
    m = rewire.train(data=small, hidden=[64], sparsity=0.9, dst="rigl", update_every=10, epochs=1,
                     batch=100, train_limit=1500, normalize="feature", input_budget=150,
                     threads=2).model
    kept = m.kept_inputs
    assert len(kept) == 150 and np.all(np.diff(kept) > 0)
    mean, std = m.feature_normalization
    assert (std == 0).any()  # Fashion-MNIST's corners: constant over 1500 images
    assert m.info()["normalize"] == "feature" and m.info()["inputs_kept"] == 150
    conn, mass = m.input_importance()
    assert set(np.nonzero(conn)[0]) <= set(kept) and mass[conn == 0].max() == 0
    seq = m.to_torch()
    with torch.no_grad():
        theirs = seq(torch.from_numpy(np.array(test.x))).numpy()
    assert np.abs(theirs - m.logits(test.x)).max() <= 1e-5
    back = rewire.from_torch(seq)
    assert np.array_equal(back.kept_inputs, kept)
    assert np.abs(back.logits(test.x) - m.logits(test.x)).max() == 0
    m.save(tmp_path / "a")
    back.save(tmp_path / "b")
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_set_feature_normalization_and_keep_inputs():
    m = rewire.Model.mlp([6, 8, 3], 0.3, seed=1)
    assert m.feature_normalization is None and list(m.kept_inputs) == list(range(6))
    mean = np.arange(6, dtype=np.float32)
    std = np.array([1, 2, 0, 1, 0.5, 1], np.float32)
    m.set_feature_normalization(mean, std)
    got_mean, got_std = m.feature_normalization
    assert np.array_equal(got_mean, mean) and np.array_equal(got_std, std)
    m.keep_inputs([0, 3, 5])
    assert list(m.kept_inputs) == [0, 3, 5]
    x = np.random.default_rng(2).random((4, 6), dtype=np.float32)
    seq = m.to_torch()
    with torch.no_grad():
        assert np.abs(seq(torch.from_numpy(x)).numpy() - m.logits(x)).max() <= 1e-6
    with pytest.raises(ValueError, match="shape"):
        m.set_feature_normalization(mean[:3], std)
    with pytest.raises(rewire.Error):
        m.keep_inputs([5, 0])
