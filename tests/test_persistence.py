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


def _rewrite_zip_headers(src, dst, method=None, flag_bits=0):
    """Copy the zip file ``src`` to ``dst`` with every member's compression method and flag bits, in its
    local header and its central-directory entry, changed (the data stays as it is)."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        infos = z.infolist()
    # central directory entries: signature PK\1\2, flags at +8, method at +10
    start = 0
    while (k := data.find(b"PK\x01\x02", start)) >= 0:
        if method is not None:
            data[k + 10 : k + 12] = method.to_bytes(2, "little")
        data[k + 8] |= flag_bits
        start = k + 4
    for info in infos:  # local headers: flags at +6, method at +8
        k = info.header_offset
        if method is not None:
            data[k + 8 : k + 10] = method.to_bytes(2, "little")
        data[k + 6] |= flag_bits
    dst.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "method, flag_bits",
    [(98, 0), (99, 0), (None, 0x40 | 0x01), (None, 0x01)],
    ids=["ppmd", "aes", "strong-encryption", "password"],
)
def test_unreadable_compression_or_encryption_is_a_value_error(tmp_path, method, flag_bits):
    net, _, _ = trained()
    path = tmp_path / "net.npz"
    net.save(path)
    odd = tmp_path / "odd.npz"
    _rewrite_zip_headers(path, odd, method, flag_bits)
    with pytest.raises(ValueError, match="not a readable fastbp network file"):
        fastbp.load(odd)


def _resealed(tmp_path, path, **changes):
    """A copy of the saved network at ``path`` with some arrays replaced and a checksum that matches."""
    from fastbp.nn.persistence import _checksum

    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays.update(changes)
    arrays["checksum"] = np.array(_checksum(arrays))
    out = tmp_path / "resealed.npz"
    np.savez(out, **arrays)
    return out


def test_non_finite_or_impossible_values_with_a_valid_checksum_are_refused_on_load(tmp_path):
    X = np.random.default_rng(0).normal(size=(20, 3))
    D = np.random.default_rng(1).normal(size=(20, 2))
    net = fastbp.Network([3, 6, 2], ["tanh", "identity"], seed=0)
    net.fit(X, D, epochs=2, batch_size=5, seed=1, optimizer=fastbp.Adam(lr=0.01))
    path = tmp_path / "n.npz"
    net.save(path)
    assert fastbp.load(_resealed(tmp_path, path)).flat_parameters.tobytes() == net.flat_parameters.tobytes()

    def with_entry(name, value):
        a = (net.flat_parameters if name == "parameters" else getattr(net.optimizer, name[len("optimizer_") :])).copy()
        a[1] = value
        return a

    bad = [
        ({"parameters": with_entry("parameters", np.nan)}, "parameters are not all finite"),
        ({"parameters": with_entry("parameters", -np.inf)}, "parameters are not all finite"),
        ({"optimizer_state1": with_entry("optimizer_state1", np.nan)}, "optimizer_state1 is not all finite"),
        ({"optimizer_state2": with_entry("optimizer_state2", np.inf)}, "optimizer_state2 is not all finite"),
        ({"optimizer_state2": with_entry("optimizer_state2", -1e-3)}, "negative"),
        ({"optimizer_step_count": np.array(-3, dtype=np.int64)}, "step_count must be in"),
        ({"optimizer_step_count": np.array(2.5)}, "one integer"),
        ({"optimizer_state2": np.zeros(0)}, "is empty"),
    ]
    for changes, message in bad:
        with pytest.raises(ValueError, match=message):
            fastbp.load(_resealed(tmp_path, path, **changes))
