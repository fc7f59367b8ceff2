"""Saving and loading networks: a ``.npz`` file with a format version and a checksum, never pickle.

Layout of the file (each entry a NumPy array):

* ``format`` -- the string "fastbp-network"; ``version`` -- FORMAT_VERSION;
* ``sizes`` (int64), ``activations`` (unicode), ``loss``, ``dtype`` (its name);
* ``parameters`` -- the flat parameter vector, bit for bit;
* ``optimizer`` -- JSON of the last optimizer's name and hyperparameters ("null"
  if the network was never trained with one), with its state vectors
  ``optimizer_state1``, ``optimizer_state2`` and ``optimizer_step_count``;
* ``checksum`` -- SHA-256 of all of the above, so a corrupted file is refused.

The file is written to a temporary file in the same directory, flushed to
disk, then renamed over the target: a crash mid-save leaves the previous file
intact.  A loaded network's ``optimizer`` carries on exactly where the saved
one stopped.
"""

import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fastbp.nn.optimizers import OPTIMIZERS

FORMAT = "fastbp-network"
FORMAT_VERSION = 1
_KEYS = (
    "format", "version", "sizes", "activations", "loss", "dtype", "parameters",
    "optimizer", "optimizer_state1", "optimizer_state2", "optimizer_step_count",
)  # fmt: skip


# what reading a file that is not a whole, plain .npz raises: NotImplementedError for a compression method
# or an encryption that zipfile cannot read, RuntimeError for a password-protected member
_UNREADABLE = (
    *(OSError, ValueError, EOFError, KeyError, NotImplementedError, RuntimeError),
    *(zipfile.BadZipFile, zlib.error),
)


class SavedNetwork(NamedTuple):
    """The contents of a network file: architecture, flat parameters, and the optimizer (None if never trained),
    its state checked against the parameters."""

    sizes: list
    activations: list
    loss: str
    parameters: np.ndarray
    optimizer: object


def _checksum(arrays):
    digest = hashlib.sha256()
    for key in _KEYS:
        a = np.asarray(arrays[key])
        digest.update(key.encode())
        digest.update(str(a.dtype).encode())
        digest.update(str(a.shape).encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def save(net, path):
    """Write ``net`` to ``path`` (the name is used as given; ``.npz`` is customary) atomically."""
    path = Path(path)
    arrays = {
        "format": np.array(FORMAT),
        "version": np.array(FORMAT_VERSION, dtype=np.int64),
        "sizes": np.array(net.sizes, dtype=np.int64),
        "activations": np.array(net.activations, dtype=np.str_),
        "loss": np.array(net.loss),
        "dtype": np.array(net.dtype.name),
        "parameters": net.flat_parameters.copy(),
    }
    opt = net.optimizer
    empty = np.zeros(0, dtype=net.dtype)
    arrays["optimizer"] = np.array(json.dumps(None if opt is None else {"name": opt.name, **opt.get_params()}))
    arrays["optimizer_state1"] = empty if opt is None or opt.state1 is None else opt.state1.copy()
    arrays["optimizer_state2"] = empty if opt is None or opt.state2 is None else opt.state2.copy()
    arrays["optimizer_step_count"] = np.array(0 if opt is None else opt.step_count, dtype=np.int64)
    arrays["checksum"] = np.array(_checksum(arrays))
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read(path):
    """What ``path`` holds, checked: a :class:`SavedNetwork`; ValueError for anything else.

    ``fastbp.load`` (in ``fastbp.nn.network``) builds the network from it.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file is not a fastbp network (truncated, corrupted, foreign or of
        an unknown format version, or values that could not work); the message says which.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise
    except _UNREADABLE as exc:
        raise ValueError(f"{path} is not a readable fastbp network file ({type(exc).__name__}: {exc})") from exc
    missing = [key for key in (*_KEYS, "checksum") if key not in arrays]
    if "format" not in arrays or str(arrays["format"]) != FORMAT:
        raise ValueError(f"{path} is not a fastbp network file (no {FORMAT!r} marker)")
    version = int(arrays["version"]) if "version" in arrays else None
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {version}; this fastbp reads version {FORMAT_VERSION}")
    if missing:
        raise ValueError(f"{path} is incomplete: missing {', '.join(missing)}")
    if str(arrays["checksum"]) != _checksum(arrays):
        raise ValueError(f"{path} is corrupted: its checksum does not match its contents")
    if arrays["sizes"].ndim != 1 or arrays["sizes"].dtype.kind not in "iu" or not np.all(arrays["sizes"] >= 1):
        raise ValueError(f"{path} is inconsistent: sizes must be layer widths >= 1, got {arrays['sizes']}")
    sizes = [int(s) for s in arrays["sizes"]]
    activations = [str(a) for a in np.atleast_1d(arrays["activations"])]
    parameters = arrays["parameters"]
    if str(parameters.dtype) != str(arrays["dtype"]):
        raise ValueError(f"{path} is inconsistent: parameters are {parameters.dtype}, header says {arrays['dtype']}")
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))  # checked before anything is allocated
    if parameters.shape != (n_params,):
        raise ValueError(
            f"{path} is inconsistent: parameters of shape {parameters.shape} for sizes {sizes} ({n_params})"
        )
    if not np.all(np.isfinite(parameters)):
        raise ValueError(f"{path} is inconsistent: its parameters are not all finite")
    dtype = parameters.dtype
    opt = None
    try:
        config = json.loads(str(arrays["optimizer"]))
        if config is not None:
            name = config.pop("name")
            opt = OPTIMIZERS[name](**config)
            for key in ("optimizer_state1", "optimizer_state2"):
                state = arrays[key]
                if state.size and (state.shape != (n_params,) or state.dtype != dtype):
                    raise ValueError(f"{key} has shape {state.shape}, dtype {state.dtype}")
                if not np.all(np.isfinite(state)):
                    raise ValueError(f"{key} is not all finite")
            if opt.name != "sgd" and np.any(arrays["optimizer_state2"] < 0):
                raise ValueError("optimizer_state2 (Adam's second moments) has negative entries")
            step_count = arrays["optimizer_step_count"]
            if step_count.shape != () or step_count.dtype.kind not in "iu":
                raise ValueError(f"optimizer_step_count must be one integer, got {step_count.dtype} {step_count.shape}")
            opt.step_count = int(step_count)
            opt.state1 = arrays["optimizer_state1"].astype(dtype)  # (a copy; empty: never used, or no such state)
            opt.state2 = arrays["optimizer_state2"].astype(dtype)
            opt.bind(n_params, dtype)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"{path} is inconsistent: its optimizer cannot be rebuilt ({exc})") from exc
    return SavedNetwork(sizes, activations, str(arrays["loss"]), parameters, opt)
