"""save and load: bit-exact, atomic, and refusing anything that is not a fastbp network."""

import os
import zipfile

import numpy as np
import pytest

import fastbp


def trained(dtype=np.float64):
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(dtype)
    D = np.random.default_rng(1).normal(size=(20, 2)).astype(dtype)
    net = fastbp.Network([3, 7, 2], ["tanh", "identity"], dtype=dtype, seed=3)
    net.fit(X, D, epochs=3, lr=0.05, batch_size=4, seed=0)
    return net, X, D


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_bit_exact(tmp_path, dtype):
    net, X, _ = trained(dtype)
    path = tmp_path / "net.npz"
    net.save(path)
    back = fastbp.load(path)
    assert back.sizes == net.sizes and back.activations == net.activations and back.loss == net.loss
    assert back.dtype == net.dtype
    assert back.flat_parameters.tobytes() == net.flat_parameters.tobytes()
    assert back.forward(X).tobytes() == net.forward(X).tobytes()


def test_training_resumed_after_load_continues_as_if_never_interrupted(tmp_path):
    net, X, D = trained()
    twin = net.copy()
    net.save(tmp_path / "a.npz")
    resumed = fastbp.load(tmp_path / "a.npz")
    h1 = resumed.fit(X, D, epochs=4, lr=0.05, batch_size=4, seed=9)
    h2 = twin.fit(X, D, epochs=4, lr=0.05, batch_size=4, seed=9)
    assert resumed.flat_parameters.tobytes() == twin.flat_parameters.tobytes()
    np.testing.assert_array_equal(h1.loss, h2.loss)


def test_save_replaces_atomically_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    net, _, _ = trained()
    path = tmp_path / "net.npz"
    net.save(path)
    good = path.read_bytes()

    # a crash in the middle of writing: the previous file must survive intact
    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated crash while writing")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        fastbp.Network([3, 7, 2], ["tanh", "identity"], seed=99).save(path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["net.npz"]


def test_truncated_corrupted_foreign_and_wrong_version_files_are_refused(tmp_path):
    net, _, _ = trained()
    path = tmp_path / "net.npz"
    net.save(path)
    data = path.read_bytes()

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable fastbp network file"):
        fastbp.load(truncated)

    # flip one byte of the stored parameters: the checksum catches it
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["parameters"] = arrays["parameters"].copy()
    arrays["parameters"][3] = np.nextafter(arrays["parameters"][3], np.inf)
    corrupted = tmp_path / "corrupted.npz"
    np.savez(corrupted, **arrays)
    with pytest.raises(ValueError, match="corrupted"):
        fastbp.load(corrupted)

    arrays_v = {k: f for k, f in arrays.items()}
    arrays_v["version"] = np.array(99)
    wrong_version = tmp_path / "v99.npz"
    np.savez(wrong_version, **arrays_v)
    with pytest.raises(ValueError, match="format version 99"):
        fastbp.load(wrong_version)

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.ones(3))
    with pytest.raises(ValueError, match="not a fastbp network file"):
        fastbp.load(foreign)

    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a readable"):
        fastbp.load(text)

    with pytest.raises(FileNotFoundError):
        fastbp.load(tmp_path / "missing.npz")


def test_files_holding_pickles_are_never_unpickled(tmp_path):
    path = tmp_path / "pickle.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("format.npy", b"")
    np.savez(path, format=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError):
        fastbp.load(path)


@pytest.mark.parametrize("make", [lambda: fastbp.Adam(lr=0.01), lambda: fastbp.SGD(lr=0.05, momentum=0.9), None])
def test_optimizer_state_is_saved_and_training_resumes_exactly(tmp_path, make):
    X = np.random.default_rng(0).normal(size=(20, 3))
    D = np.random.default_rng(1).normal(size=(20, 2))
    net = fastbp.Network([3, 6, 2], ["tanh", "identity"], seed=0)
    opt = make() if make else None
    net.fit(X, D, epochs=3, batch_size=5, seed=1, optimizer=opt)
    net.save(tmp_path / "n.npz")
    back = fastbp.load(tmp_path / "n.npz")
    assert type(back.optimizer) is type(net.optimizer)
    assert back.optimizer.get_params() == net.optimizer.get_params()
    assert back.optimizer.step_count == net.optimizer.step_count
    # continue both: identical
    net.fit(X, D, epochs=3, batch_size=5, seed=2, optimizer=net.optimizer)
    back.fit(X, D, epochs=3, batch_size=5, seed=2, optimizer=back.optimizer)
    assert net.flat_parameters.tobytes() == back.flat_parameters.tobytes()
