"""``sweep``: one network per configuration, trained in parallel on Dask workers."""

import contextlib
import math
import time
import uuid

import dask.array as da
import numpy as np

from fastbp.engine._threaded import limit_threads
from fastbp.errors import DivergenceError
from fastbp.integrations.dask.driver import _as_row_arrays, _check_client, _client_scope, _n_threads
from fastbp.nn.network import Network
from fastbp.nn.optimizers import OPTIMIZERS
from fastbp.nn.training import frozen_mask
from fastbp.nn.validation import (
    as_float_array,
    as_pair,
    check_columns,
    check_finite,
    check_known_keys,
    check_non_negative_int,
    check_not_empty,
    check_option_or_none,
    check_positive_int,
    check_positive_number,
    check_required_keys,
    check_same_widths,
    check_seed,
)

_CONFIG_DEFAULTS = dict(
    loss="squared_error", dtype="float64", seed=None, lr=None, epochs=1, batch_size=32, shuffle=True, optimizer=None,
    trainable=None,
)  # fmt: skip


CONFIG_KEYS = ("sizes", "activations", *_CONFIG_DEFAULTS)


RESULT_COLUMNS = ("final_loss", "accuracy", "last_epoch_loss", "diverged", "seconds", "worker")


class SweepTable(list):
    """The rows of a :func:`sweep`: a plain list of dicts, one per configuration, in the configurations' order.

    Each row holds the keys of its configuration as given (``sizes``,
    ``seed``, ``lr``, ...), ``index`` (its position in ``configs``) and:

    * ``final_loss`` -- the trained network's mean loss on (X, D);
    * ``accuracy`` -- on (X, D): for cross-entropy losses the fraction of
      samples classified right (``Network.evaluate``); for squared error the
      fraction of samples whose every output is within 0.5 of its target
      (all four XOR outputs round right: 1.0);
    * ``last_epoch_loss`` -- ``history.loss[-1]`` of ``fit``;
    * ``diverged`` -- True if ``fit`` raised ``DivergenceError`` (the losses
      are then those of the parameters it put back) or its last update left
      parameters that are not finite (the losses and accuracy are then NaN);
    * ``seconds`` -- wall time of ``fit`` on the worker, compilation excluded;
    * ``worker`` -- the address of the worker that trained it;
    * ``val_loss``, ``val_accuracy`` -- the same on ``validation_data``, if given;
    * ``parameters`` -- the flat parameters (n_params,), with ``return_parameters=True``.

    No pandas needed; :meth:`to_pandas` converts when pandas is installed.
    """

    def column(self, name):
        """One value per row (a list)."""
        return [row.get(name) for row in self]

    def to_pandas(self):
        """A ``pandas.DataFrame`` of the rows (requires pandas)."""
        import pandas as pd

        return pd.DataFrame(list(self))

    def network(self, i):
        """Row i's trained network (needs ``return_parameters=True``)."""
        row = self[i]
        if "parameters" not in row:
            raise ValueError("the sweep was run without return_parameters=True")
        net = Network(
            list(row["sizes"]), row["activations"], loss=row.get("loss", "squared_error"),
            dtype=row.get("dtype", "float64"), seed=0,
        )  # fmt: skip
        net.flat_parameters[...] = row["parameters"]
        return net


def _check_config(i, config, n_in, n_out, checked):
    """The configuration with defaults filled in; TypeError/ValueError naming configs[i] if it is not valid."""
    if not isinstance(config, dict):
        raise TypeError(f"configs[{i}] must be a dict, got {type(config).__name__}")
    check_known_keys(config, f"configs[{i}]", CONFIG_KEYS)
    check_required_keys(config, f"configs[{i}]", ("sizes", "activations"))
    full = dict(_CONFIG_DEFAULTS, **config)
    try:
        arch = (
            tuple(int(s) for s in full["sizes"]),
            full["activations"] if isinstance(full["activations"], str) else tuple(full["activations"]),
            full["loss"],
            np.dtype(full["dtype"]).name,
        )
        if arch not in checked:
            checked[arch] = Network(list(arch[0]), full["activations"], loss=arch[2], dtype=arch[3], seed=0)
        net = checked[arch]
        check_columns(n_in, "X", net.sizes[0])
        check_columns(n_out, "D", net.sizes[-1], "targets per sample")
        check_seed(full["seed"])
        if full["lr"] is not None:
            check_positive_number(full["lr"], "lr")
        check_positive_int(full["epochs"], "epochs")
        check_positive_int(full["batch_size"], "batch_size")
        check_option_or_none(full["optimizer"], "optimizer", OPTIMIZERS)
        if full["trainable"] is not None:
            full["trainable"] = [bool(f) if isinstance(f, np.bool_) else f for f in full["trainable"]]
            frozen_mask(net, full["trainable"])
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"configs[{i}]: {exc}") from exc
    return full


_warmed: set = set()


def _train_one(full, X, D, validation, return_parameters):
    """Train and measure the network of one (completed) configuration; the row's result columns."""
    with limit_threads(1):  # one network per core: the sweep's tasks share the worker's cores
        return _train_one_here(full, X, D, validation, return_parameters)


def _train_one_here(full, X, D, validation, return_parameters):
    net = Network(list(full["sizes"]), full["activations"], loss=full["loss"], dtype=full["dtype"], seed=full["seed"])
    kwargs = dict(
        epochs=full["epochs"], lr=full["lr"], batch_size=full["batch_size"], shuffle=full["shuffle"], seed=full["seed"],
        trainable=full["trainable"], optimizer=full["optimizer"],
    )  # fmt: skip
    path = (net.sizes, net.activations, net.loss, net.dtype.name, full["optimizer"], str(full["trainable"]))
    if path not in _warmed:  # compile (or load) this training path before the clock starts
        rows = min(full["batch_size"], X.shape[0])
        for step in ("fit", "evaluate", "forward"):
            warm = Network(list(net.sizes), list(net.activations), loss=net.loss, dtype=net.dtype, seed=0)
            with contextlib.suppress(DivergenceError):
                if step == "fit":
                    warm.fit(X[:rows], D[:rows], **dict(kwargs, epochs=1, seed=0))
                elif step == "evaluate":
                    warm.evaluate(X[:rows], D[:rows])
                else:
                    warm.forward(X[:rows])
        _warmed.add(path)
    start = time.perf_counter()
    try:
        history = net.fit(X, D, **kwargs)
        diverged = False
    except DivergenceError as exc:
        history, diverged = exc.history, True
    seconds = time.perf_counter() - start
    # the last step's update can make the parameters non-finite without a later batch to notice
    diverged = diverged or not np.all(np.isfinite(net.flat_parameters))
    result = {}
    result["final_loss"], result["accuracy"] = _loss_and_accuracy(net, X, D)
    result["last_epoch_loss"] = float(history.loss[-1]) if len(history.loss) else math.nan
    result["diverged"] = diverged
    result["seconds"] = seconds
    if validation is not None:
        result["val_loss"], result["val_accuracy"] = _loss_and_accuracy(net, *validation)
    if return_parameters:
        result["parameters"] = net.flat_parameters.copy()
    return result


def _loss_and_accuracy(net, X, D):
    """(mean loss, accuracy) of ``net`` on (X, D), see :class:`SweepTable`; (nan, nan) for non-finite parameters."""
    if not np.all(np.isfinite(net.flat_parameters)):
        return math.nan, math.nan
    E, accuracy = net.evaluate(X, D)
    if accuracy is None:  # squared error: every output within 0.5 of its target
        Y = net.forward(X)
        accuracy = float(np.mean(np.all(np.abs(Y - D) < 0.5, axis=1)))
    return E, accuracy


def _sweep_chunk(X, D, validation, items, return_parameters):
    """Train the configurations ``items`` [(index, completed config), ...] one after another on one worker."""
    from distributed import get_worker

    try:
        worker = get_worker().address
    except ValueError:
        worker = None
    converted = {}

    def data(dtype):  # X, D (and the validation pair) once per dtype: writeable, C-contiguous
        if dtype not in converted:
            pairs = [(X, D)] + ([validation] if validation is not None else [])
            converted[dtype] = [tuple(as_float_array(a, "X", np.dtype(dtype)) for a in p) for p in pairs]
        return converted[dtype]

    rows = []
    for index, full in items:
        pairs = data(np.dtype(full["dtype"]).name)
        result = _train_one(full, *pairs[0], pairs[1] if validation is not None else None, return_parameters)
        result["worker"] = worker
        rows.append((index, result))
    return rows


def _sweep_data(client, a, name):
    """numpy data scattered to every worker once, or a dask array computed into one future (its lineage kept)."""
    if isinstance(a, da.Array):
        return client.compute(a.rechunk({0: -1, 1: -1}))
    check_finite(a, name)
    return client.scatter(a, broadcast=True, hash=False)


def sweep(
    configs, X, D, client=None, validation_data=None, return_parameters=False, configs_per_task=None, retries=1,
):  # fmt: skip
    """Train one network per configuration, in parallel on Dask workers; one row of results per configuration.

    Parameters
    ----------
    configs : sequence of dict
        Each dict takes ``sizes`` and ``activations`` (required) and any of
        ``loss``, ``dtype``, ``seed`` (the arguments of ``Network``) and
        ``lr``, ``epochs``, ``batch_size``, ``shuffle``, ``optimizer`` (a name:
        "sgd", "adam" or "adamw"), ``trainable`` (the arguments of
        ``Network.fit``), with the same defaults.  ``seed`` seeds both the
        initial weights and the shuffling, so a configuration with a seed
        gives the same network as ``Network(..., seed=s).fit(X, D, ..., seed=s)``
        on one machine, bit for bit.
    X : numpy or dask array (n_samples, n_in)
    D : numpy or dask array (n_samples, n_out), or (n_samples,) when n_out == 1
        Every network trains on all of (X, D); it is sent to each worker once
        (numpy: scattered; dask: computed on the cluster, then copied to the
        workers that need it), not once per task.
    client : dask.distributed.Client or None
        None: a ``LocalCluster`` of worker processes for this call.
    validation_data : (Xv, Dv), optional
        Adds ``val_loss`` and ``val_accuracy`` to every row.
    return_parameters : bool
        Adds each trained network's flat parameters (n_params,) to its row;
        :meth:`SweepTable.network` rebuilds the network from them.
    configs_per_task : int or None
        Configurations trained one after another in one Dask task.  Dask's
        overhead is about 1 ms per task, more than a small network's training,
        so configurations are grouped: None gives about four tasks per worker
        thread (at most 1000 configurations each).
    retries : int >= 0
        How many times Dask reruns a task that raised.

    Returns
    -------
    SweepTable
        A list of dicts, one per configuration, in order (see
        :class:`SweepTable` for the columns: final_loss, accuracy, seconds, ...).

    Raises
    ------
    TypeError, ValueError
        A bad configuration (the message names ``configs[i]``) or bad data,
        before any work is submitted.
    RuntimeError
        Dask could not deliver a group of results; the message names the
        configurations.  A network that diverges does not raise: its row has
        ``diverged=True``.
    """
    _check_client(client)
    configs = list(configs)
    check_not_empty(len(configs), "configs", "give at least one configuration")
    X, D = _as_row_arrays(X, D)
    validation = None
    if validation_data is not None:
        validation = _as_row_arrays(*as_pair(validation_data, "validation_data", "(Xv, Dv)"), "Xv", "Dv")
        check_same_widths(validation, (X, D), "validation_data")
    checked = {}
    full = [_check_config(i, cfg, X.shape[1], D.shape[1], checked) for i, cfg in enumerate(configs)]
    return_parameters = bool(return_parameters)
    retries = check_non_negative_int(retries, "retries")
    if configs_per_task is not None:
        configs_per_task = check_positive_int(configs_per_task, "configs_per_task")

    with _client_scope(client) as c:
        per_task = configs_per_task or min(1000, max(1, -(-len(full) // (4 * _n_threads(c)))))
        x_f, d_f = _sweep_data(c, X, "X"), _sweep_data(c, D, "D")
        v_f = None
        if validation is not None:
            v_f = (_sweep_data(c, validation[0], "Xv"), _sweep_data(c, validation[1], "Dv"))
        token = uuid.uuid4().hex
        groups = [list(enumerate(full))[i : i + per_task] for i in range(0, len(full), per_task)]
        args = (x_f, d_f, v_f)
        futures = [
            c.submit(_sweep_chunk, *args, group, return_parameters, key=f"fastbp-sweep-{token}-{j}", retries=retries)
            for j, group in enumerate(groups)
        ]
        results = {}
        for j, future in enumerate(futures):
            try:
                results.update(future.result())
            except (ValueError, TypeError):
                raise
            except Exception as exc:
                first, last = groups[j][0][0], groups[j][-1][0]
                raise RuntimeError(
                    f"sweep: the results of configs[{first}..{last}] could not be computed: {type(exc).__name__}: {exc}"
                ) from exc
    table = SweepTable()
    for i, cfg in enumerate(configs):
        table.append({"index": i, **cfg, **results[i]})
    return table
