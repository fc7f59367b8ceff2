"""Code specialised to one small architecture: every unit a local variable, sizes as constants.

For tiny networks (the tutorial's 2-2-1 XOR net and anything up to
``MAX_PARAMS`` weights and biases) the generic kernels spend their time on
loop bookkeeping and on memory traffic for a handful of numbers.  Here we
write Python source in which every weight, bias, z, y and delta of the network
is a named local (``w1_0_1`` is w_01 of layer 1, ``z2_0`` is z_0 of layer 2),
every sum is written out, and ``fit`` keeps the parameters in locals
(registers) for the whole run, storing them back at the end.  The source is
written once per architecture and dtype to a cache directory, imported as a
module and compiled by numba with ``cache=True``, so later processes load the
machine code from disk.

The formulas are the tutorial's, exactly as in ``kernels``:
z_j = sum_i w_ij y_i + b_j; y_j = f(z_j); delta^L = (y - d) f'(z^L);
delta_j^l = (sum_k delta_k^(l+1) w_jk^(l+1)) f'(z_j^l); dE/dw_ij = delta_j y_i
averaged over the batch; w <- w - eta dE/dw.

Generated functions (X and D may be 1-D for one sample, any strides):

* ``forward(theta, X, Y)`` -- Y (n, n_out) written;
* ``loss_and_gradient(theta, X, D, grad)`` -- returns E, grad written (flat);
* ``train_step(theta, X, D, lr)`` -- one step, returns E before it;
* ``fit_epochs(theta, X, D, epoch_lrs, batch_size, shuffle, rng_state, backup,
  backup_valid, order, epoch_losses, frozen_layers)`` -- plain SGD with learning rate
  ``epoch_lrs[epoch]`` on every layer l whose ``frozen_layers[l - 1]`` is 0 (uint8,
  one per non-input layer; the others keep their parameters exactly);
  ``rng_state`` (uint64, length 1) is advanced in place; ``backup`` keeps
  the parameters before the last update across calls (``backup_valid[0]``
  says whether it holds any).  Returns -1 when all
  epochs ran; on the first batch whose loss is not finite, it puts back the
  parameters at which the last finite loss was measured and returns that
  batch's index, epoch * n_batches + batch.

Each returns -1.0 (``fit_epochs``: -2) without touching ``theta`` when X, D or
theta holds a non-finite value or X no sample (a loss is never negative); the caller
then finds out why in Python.  Learning rates are rounded to the dtype first, as ``F(lr)``.
"""

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from fastbp.config import COMPILED_SOURCES
from fastbp.kernels.activations import IDENTITY, RELU, SIGMOID, TANH
from fastbp.kernels.losses import SQUARED_ERROR

MAX_PARAMS = 64
CODEGEN_VERSION = 7

_loaded: dict[tuple, object] = {}


def supports(layout):
    """True if the network of this Layout gets generated code: small, tutorial activations, squared error."""
    return (
        layout.n_params <= MAX_PARAMS
        and all(int(c) in (IDENTITY, SIGMOID, TANH, RELU) for c in layout.codes)
        and layout.loss_code == SQUARED_ERROR
    )


def cache_dir():
    """Where generated modules live: $FASTBP_CACHE_DIR, else $XDG_CACHE_HOME/fastbp, else ~/.cache/fastbp."""
    root = os.environ.get("FASTBP_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fastbp"


class _Names:
    """Local-variable names of one architecture, as in the tutorial (layer l = 1..L)."""

    def __init__(self, sizes):
        self.sizes = sizes
        self.L = len(sizes) - 1
        # offsets into the flat parameter vector: W of layer l row-major, then b of layer l
        self.w_offset, self.b_offset = {}, {}
        offset = 0
        for l in range(1, self.L + 1):
            self.w_offset[l] = offset
            offset += sizes[l - 1] * sizes[l]
            self.b_offset[l] = offset
            offset += sizes[l]
        self.n_params = offset

    def params(self):
        """(name, flat index) of every parameter, in flat order."""
        out = []
        for l in range(1, self.L + 1):
            for i in range(self.sizes[l - 1]):
                for j in range(self.sizes[l]):
                    out.append((f"w{l}_{i}_{j}", self.w_offset[l] + i * self.sizes[l] + j))
            for j in range(self.sizes[l]):
                out.append((f"b{l}_{j}", self.b_offset[l] + j))
        return out


def _layer(name):
    """The layer l of a parameter's local name, w{l}_{i}_{j} or b{l}_{j}."""
    return int(name[1:].split("_")[0])


def _activation(code, z):
    if code == SIGMOID:
        return f"sigmoid_scalar({z})"
    if code == TANH:
        return f"math.tanh({z})"
    if code == RELU:
        return f"({z} if ({z} > 0.0 or {z} != {z}) else 0.0)"
    return z


def _derivative(code, z, y):
    if code == SIGMOID:
        return f"({y} * (1.0 - {y}))"
    if code == TANH:
        return f"(1.0 - {y} * {y})"
    if code == RELU:
        return f"(1.0 if {z} > 0.0 else 0.0)"
    return "1.0"


def _forward_lines(names, codes, indent):
    """Lines computing z{l}_{j} and y{l}_{j} of sample r from x_i = X2[r, i]."""
    sizes = names.sizes
    pad = " " * indent
    lines = [f"{pad}y0_{i} = F(X2[r, {i}])" for i in range(sizes[0])]
    for l in range(1, names.L + 1):
        for j in range(sizes[l]):
            terms = " + ".join(f"w{l}_{i}_{j} * y{l - 1}_{i}" for i in range(sizes[l - 1]))
            lines.append(f"{pad}z{l}_{j} = F({terms} + b{l}_{j})")
            lines.append(f"{pad}y{l}_{j} = F({_activation(codes[l - 1], f'z{l}_{j}')})")
    return lines


def _backward_lines(names, codes, indent):
    """Lines adding sample r's loss to E and its gradient to the g_ locals."""
    sizes, L = names.sizes, names.L
    pad = " " * indent
    lines = []
    for j in range(sizes[L]):
        lines.append(f"{pad}r_{j} = y{L}_{j} - F(D2[r, {j}])")
        lines.append(f"{pad}E += 0.5 * r_{j} * r_{j}")
        lines.append(f"{pad}delta{L}_{j} = F(r_{j} * {_derivative(codes[L - 1], f'z{L}_{j}', f'y{L}_{j}')})")
    for l in range(L - 1, 0, -1):
        for j in range(sizes[l]):
            terms = " + ".join(f"delta{l + 1}_{k} * w{l + 1}_{j}_{k}" for k in range(sizes[l + 1]))
            fp = _derivative(codes[l - 1], f"z{l}_{j}", f"y{l}_{j}")
            lines.append(f"{pad}delta{l}_{j} = F(({terms}) * {fp})")
    for l in range(1, L + 1):
        for i in range(sizes[l - 1]):
            for j in range(sizes[l]):
                lines.append(f"{pad}g_w{l}_{i}_{j} += delta{l}_{j} * y{l - 1}_{i}")
        for j in range(sizes[l]):
            lines.append(f"{pad}g_b{l}_{j} += delta{l}_{j}")
    return lines


def _check_inputs_lines(indent, bad="-1.0"):
    pad = " " * indent
    return [
        f"{pad}X2 = as_rows(X)",
        f"{pad}D2 = as_rows(D)",
        f"{pad}n = X2.shape[0]",
        f"{pad}if n == 0 or not all_finite(X2) or not all_finite(D2) or not all_finite_flat(theta):",
        f"{pad}    return {bad}",
    ]


def _update_lines(params, indent, frozen=False):
    """theta <- theta - eta * g * scale for every parameter local; ``frozen``: by a select per layer."""
    pad = " " * indent
    if not frozen:
        return [f"{pad}{name} = F({name} - eta * F(g_{name} * scale))" for name, _ in params]
    # a select, not a multiplication by 0: a frozen parameter stays exactly as it is even for an inf gradient
    return [
        f"{pad}{name} = {name} if frozen{_layer(name)} else F({name} - eta * F(g_{name} * scale))" for name, _ in params
    ]


def _batch_lines(names, codes, params):
    """E and the gradient locals of one batch of n samples (rows r of X2, D2), parameters in locals."""
    return [
        "    E = 0.0",
        *[f"    g_{name} = F(0.0)" for name, _ in params],
        "    for r in range(n):",
        *_forward_lines(names, codes, 8),
        *_backward_lines(names, codes, 8),
    ]


def _forward_function(names, codes, params):
    return [
        "@jit",
        "def forward(theta, X, Y):",
        "    X2 = as_rows(X)",
        *[f"    {name} = theta[{k}]" for name, k in params],
        "    for r in range(X2.shape[0]):",
        *_forward_lines(names, codes, 8),
        *[f"        Y[r, {j}] = y{names.L}_{j}" for j in range(names.sizes[-1])],
    ]


def _loss_and_gradient_function(names, codes, params):
    return [
        "@jit",
        "def loss_and_gradient(theta, X, D, grad):",
        *_check_inputs_lines(4),
        *[f"    {name} = theta[{k}]" for name, k in params],
        *_batch_lines(names, codes, params),
        "    scale = 1.0 / n",
        *[f"    grad[{k}] = F(g_{name} * scale)" for name, k in params],
        "    return E / n",
    ]


def _train_step_function(names, codes, params):
    return [
        "@jit",
        "def train_step(theta, X, D, lr):",
        *_check_inputs_lines(4),
        "    eta = F(lr)",
        *[f"    {name} = theta[{k}]" for name, k in params],
        *_batch_lines(names, codes, params),
        "    scale = 1.0 / n",
        *_update_lines(params, 4),
        *[f"    theta[{k}] = {name}" for name, k in params],
        "    return E / n",
    ]


def _fit_epochs_function(names, codes, params):
    return [
        "@jit",
        "def fit_epochs(theta, X, D, epoch_lrs, batch_size, shuffle, rng_state, backup, backup_valid, order,",
        "               epoch_losses, frozen_layers):",
        *_check_inputs_lines(4, bad="-2"),
        "    n_batches = (n + batch_size - 1) // batch_size",
        *[f"    frozen{l} = frozen_layers[{l - 1}] != 0" for l in range(1, names.L + 1)],
        *[f"    {name} = theta[{k}]" for name, k in params],
        "    if backup_valid[0]:",
        *[f"        p_{name} = backup[{k}]" for name, k in params],
        "    else:",
        *[f"        p_{name} = {name}" for name, _ in params],
        "    for epoch in range(epoch_losses.shape[0]):",
        "        eta = F(epoch_lrs[epoch])",
        "        if shuffle:",
        "            rng_state[0] = shuffle_in_place(order, rng_state[0])",
        "        total = 0.0",
        "        for batch in range(n_batches):",
        "            start = batch * batch_size",
        "            m = min(batch_size, n - start)",
        "            E = 0.0",
        *[f"            g_{name} = F(0.0)" for name, _ in params],
        "            for rr in range(start, start + m):",
        "                r = order[rr]",
        *_forward_lines(names, codes, 16),
        *_backward_lines(names, codes, 16),
        "            if not math.isfinite(E):",
        "                # diverged: put back the parameters at which the last finite loss was measured",
        *[f"                theta[{k}] = p_{name}" for name, k in params],
        "                return epoch * n_batches + batch",
        *[f"            p_{name} = {name}" for name, _ in params],
        "            backup_valid[0] = 1",
        "            scale = 1.0 / m",
        *_update_lines(params, 12, frozen=True),
        "            total += E / m",
        "        epoch_losses[epoch] = total / n_batches",
        *[f"    theta[{k}] = {name}" for name, k in params],
        *[f"    backup[{k}] = p_{name}" for name, k in params],
        "    return -1",
    ]


_FUNCTIONS = (_forward_function, _loss_and_gradient_function, _train_step_function, _fit_epochs_function)


def generate_source(sizes, codes, dtype_name):
    """Python source of the module for one architecture (sizes, activation codes) and dtype."""
    names = _Names(sizes)
    params = names.params()
    src = [
        f'"""Generated by fastbp.engine._codegen (version {CODEGEN_VERSION}) for sizes {list(sizes)}, '
        f'activation codes {list(codes)}, {dtype_name}. Do not edit."""',
        "import math",
        "import numpy as np",
        "from fastbp.config import jit",
        "from fastbp.kernels._jit_utils import all_finite, all_finite_flat, as_rows, shuffle_in_place",
        "from fastbp.kernels import sigmoid_scalar",
        f"F = np.{dtype_name}",
    ]
    for function in _FUNCTIONS:
        src += ["", "", *function(names, codes, params)]
    return "\n".join(src + [""])


def _module_key(sizes, codes, dtype_name):
    """Hash of the architecture and of every source file of the package the generated code may call."""
    digest = hashlib.sha256(f"{CODEGEN_VERSION}|{list(sizes)}|{list(codes)}|{dtype_name}".encode())
    package = Path(__file__).resolve().parent.parent
    for name in COMPILED_SOURCES:
        digest.update((package / name).read_bytes())
    return digest.hexdigest()[:20]


def load(sizes, codes, dtype):
    """The compiled module for this architecture and dtype (generated on first use), or None if too big."""
    sizes = tuple(int(s) for s in sizes)
    codes = tuple(int(c) for c in codes)
    dtype_name = str(dtype)
    if _Names(sizes).n_params > MAX_PARAMS:
        return None
    key = (sizes, codes, dtype_name)
    if key in _loaded:
        return _loaded[key]
    module_name = f"fastbp_arch_{_module_key(sizes, codes, dtype_name)}"
    directory = cache_dir()
    path = directory / f"{module_name}.py"
    source = generate_source(sizes, codes, dtype_name)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != source:
            # write to a temporary file and rename it into place: other processes never see half a file
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(source)
            os.replace(tmp, path)
    except OSError:
        # no writable cache directory: compile from a temporary directory, without numba's disk cache
        directory = Path(tempfile.mkdtemp(prefix="fastbp-"))
        path = directory / f"{module_name}.py"
        path.write_text(source)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    _loaded[key] = module
    return module
