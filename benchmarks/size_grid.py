"""The performance map: one shuffled training epoch over a grid of network sizes, for fastbp, PyTorch and JAX.

Each cell: 64 inputs, ``depth`` hidden ReLU layers of ``width`` units, 10 softmax outputs, cross-entropy,
Adam(lr=1e-3), mini-batches of ``batch``, one shuffled epoch over n samples (n = 256 for batch 1, else 4096).
Each peer is written as its users write it: PyTorch as ``nn.Sequential`` and ``torch.optim.Adam`` with the
usual Python loop over the batches of a ``randperm`` (two threads); JAX as ``jax.jit`` of one ``lax.scan``
epoch with Adam written in ``jax.numpy``; fastbp as ``Network.fit(epochs=1)`` with one ``fastbp.Adam`` kept
across epochs.  Every (tool, dtype, cell) runs in its own subprocess; its time is the median of 5 epochs after
a warm-up epoch (which compiles).  ratio = the faster peer's time / fastbp's (> 1: fastbp is faster).

A roofline line per cell says what share of this machine's limits the fastbp epoch reached: its
multiply-adds (forward, and backward twice, over every sample) against the GEMM rate of one large
``np.dot`` on all cores, and the bytes of its per-step passes over the parameters (Adam reads theta, the
gradient, m and v and writes theta, m, v; the gradient is written once) against the bandwidth of a large copy.

    python benchmarks/size_grid.py                    # the whole grid, float32 and float64
    python benchmarks/size_grid.py --dtype float32 --quick --json grid.json --figure grid.png
    python benchmarks/size_grid.py --rounds 3         # the tools take turns 3 times per cell: medians of those
    python benchmarks/size_grid.py --one-thread       # fastbp on one thread too: do two threads ever lose?

``--one-thread`` adds fastbp with ``fastbp.set_num_threads(1)`` as a fourth turn per cell, and a column to
the table: the issue's "two threads never lose to one" (this machine has spells in which the two-thread
engine runs 2x slower while one thread does not).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEPTHS = (1, 3)
WIDTHS = (32, 128, 512, 1024)
BATCHES = (1, 32, 256)
N_IN, N_OUT, LR = 64, 10, 1e-3
TOOLS = ("fastbp", "torch", "jax")
ONE_THREAD = "fastbp_1thread"  # fastbp on one thread: not a peer, the yardstick of its own threads
DTYPES = ("float32", "float64")


def samples(batch):
    return 256 if batch == 1 else 4096


def cells():
    return [(d, w, b) for d in DEPTHS for w in WIDTHS for b in BATCHES]


def sizes(depth, width):
    return [N_IN] + [width] * depth + [N_OUT]


def n_parameters(depth, width):
    s = sizes(depth, width)
    return sum(a * b + b for a, b in zip(s[:-1], s[1:]))


def data(n, dtype, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_IN)).astype(dtype)
    D = np.eye(N_OUT, dtype=dtype)[rng.integers(0, N_OUT, n)]
    return X, D


# ----------------------------------------------------------------------------- one epoch per tool


def epoch_fastbp(depth, width, batch, dtype):
    import fastbp

    X, D = data(samples(batch), dtype)
    net = fastbp.Network(sizes(depth, width), ["relu"] * depth + ["softmax"], loss="cross_entropy", dtype=dtype, seed=0)
    opt = fastbp.Adam(lr=LR)
    seeds = iter(range(10**6))

    def run():
        return net.fit(X, D, epochs=1, batch_size=batch, seed=next(seeds), optimizer=opt).loss[-1]

    # whether fit chose one of its engines on several threads (it keeps that engine's buffers on the network)
    run.threaded = lambda: net._shared_run is not None or net._wide_run is not None
    return run


def epoch_torch(depth, width, batch, dtype):
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    X, D = data(samples(batch), dtype)
    tdtype = getattr(torch, dtype)
    X, labels = torch.from_numpy(X), torch.from_numpy(D.argmax(axis=1))
    layers, s = [], sizes(depth, width)
    for k, (a, b) in enumerate(zip(s[:-1], s[1:])):
        layers.append(torch.nn.Linear(a, b, dtype=tdtype))
        if k < depth:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = X.shape[0]

    def run():
        order = torch.randperm(n)
        for start in range(0, n, batch):
            rows = order[start : start + batch]
            opt.zero_grad()
            loss = loss_fn(model(X[rows]), labels[rows])
            loss.backward()
            opt.step()
        return float(loss.detach())

    return run


def epoch_jax(depth, width, batch, dtype):
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    X, D = data(samples(batch), dtype)
    n = X.shape[0]
    steps = n // batch
    key = jax.random.PRNGKey(0)
    params = []
    s = sizes(depth, width)
    for a, b in zip(s[:-1], s[1:]):
        key, sub = jax.random.split(key)
        bound = (6.0 / a) ** 0.5
        params.append((jax.random.uniform(sub, (a, b), dtype=dtype, minval=-bound, maxval=bound), jnp.zeros(b, dtype)))

    def loss_fn(params, x, d):
        h = x
        for W, b in params[:-1]:
            h = jax.nn.relu(h @ W + b)
        W, b = params[-1]
        return -jnp.mean(jnp.sum(d * jax.nn.log_softmax(h @ W + b), axis=1))

    grad_fn = jax.value_and_grad(loss_fn)
    b1, b2, eps = 0.9, 0.999, 1e-8

    def adam_step(carry, rows):
        params, m, v, t = carry
        loss, g = grad_fn(params, X_dev[rows], D_dev[rows])
        t = t + 1
        m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        step = LR / (1 - b1**t)
        params = jax.tree_util.tree_map(lambda p, m, v: p - step * m / (jnp.sqrt(v / (1 - b2**t)) + eps), params, m, v)
        return (params, m, v, t), loss

    @jax.jit
    def epoch(params, m, v, t, key):
        order = jax.random.permutation(key, n)[: steps * batch].reshape(steps, batch)
        (params, m, v, t), losses = jax.lax.scan(adam_step, (params, m, v, t), order)
        return params, m, v, t, losses[-1]

    X_dev, D_dev = jnp.asarray(X), jnp.asarray(D)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    state = [params, zeros, zeros, jnp.asarray(0, dtype)]
    keys = iter(range(10**6))

    def run():
        params, m, v, t, loss = epoch(*state, jax.random.PRNGKey(next(keys)))
        state[:] = [params, m, v, t]
        return float(loss.block_until_ready())

    return run


def epoch_fastbp_one_thread(depth, width, batch, dtype):
    import fastbp

    fastbp.set_num_threads(1)
    return epoch_fastbp(depth, width, batch, dtype)


EPOCHS = {"fastbp": epoch_fastbp, "torch": epoch_torch, "jax": epoch_jax, ONE_THREAD: epoch_fastbp_one_thread}


def child(tool, dtype, depth, width, batch, repeats):
    """In the subprocess: median seconds of ``repeats`` epochs after one warm-up, as JSON on stdout."""
    try:
        run = EPOCHS[tool](depth, width, batch, dtype)
    except ImportError as exc:
        print(json.dumps({"skipped": f"{tool} is not installed ({exc})"}))
        return
    loss = run()  # compiles
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss = run()
        times.append(time.perf_counter() - start)
    times.sort()
    report = {"seconds": times[len(times) // 2], "loss": loss}
    if hasattr(run, "threaded"):
        report["threaded"] = run.threaded()
    print(json.dumps(report))


# ----------------------------------------------------------------------------- the machine's limits


def machine_limits():
    """(multiply-adds per second of one large float32 and float64 np.dot, bytes per second of a large copy)."""
    import numpy as np

    def best(fn, k=5):
        out = []
        for _ in range(k):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
        return min(out)

    rate = {}
    for dtype in DTYPES:
        A = np.ones((2048, 2048), dtype=dtype)
        A @ A
        rate[dtype] = 2048**3 / best(lambda A=A: A @ A)
    a = np.ones(64 * 2**20 // 8)
    b = np.empty_like(a)
    bandwidth = 2 * a.nbytes / best(lambda: np.copyto(b, a))  # read and write
    return rate, bandwidth


def cpu_name():
    """This machine's CPU as /proc/cpuinfo names it, with its family, model and widest vector unit (Linux)."""
    import platform

    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = fields.get("flags", "").split()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return (
        f"{fields.get('model name', platform.machine())} (family {fields.get('cpu family', '?')}, "
        f"model {fields.get('model', '?')}, {vector}, {os.cpu_count()} cores)"
    )


def roofline(depth, width, batch, dtype, seconds, limits):
    """(share of the GEMM rate, share of the bandwidth) the fastbp epoch reached."""
    rate, bandwidth = limits
    n = samples(batch)
    weights = n_parameters(depth, width)
    multiply_adds = 3 * n * weights  # forward, and the two products of the backward pass
    size = 4 if dtype == "float32" else 8
    passes = 8 * weights * size * (n // batch)  # Adam: 4 reads and 3 writes, the gradient written once
    return multiply_adds / seconds / rate[dtype], passes / seconds / bandwidth


# ----------------------------------------------------------------------------- the driver


def run_child(tool, dtype, cell, repeats, env):
    """One subprocess: the child's report (seconds, loss), or its error."""
    depth, width, batch = cell
    args = [sys.executable, __file__, "--child", tool, dtype, str(depth), str(width), str(batch), str(repeats)]
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=3600)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": out.stderr.strip().splitlines()[-1:] or ["no output"]}


def measure(dtypes, tools, repeats, grid, rounds=1):
    """Every tool on every cell: with ``rounds`` > 1 the tools of a cell take turns (in a rotated order each
    round, one subprocess each), and a tool's time is the median of its rounds, which are kept as well. This
    machine has spells of a few seconds in which everything runs 2-4x slower; taking turns spreads them
    over the tools instead of letting one spell decide a cell."""
    results = {}
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]),
    )
    for dtype in dtypes:
        for cell in grid:
            reports = {tool: [] for tool in tools}
            for r in range(rounds):
                for tool in tools[r % len(tools) :] + tools[: r % len(tools)]:
                    reports[tool].append(run_child(tool, dtype, cell, repeats, env))
            for tool in tools:
                key = f"{tool}/{dtype}/{'/'.join(map(str, cell))}"
                times = sorted(rep["seconds"] for rep in reports[tool] if "seconds" in rep)
                if not times:
                    results[key] = reports[tool][0]
                else:
                    results[key] = {"seconds": times[(len(times) - 1) // 2], "loss": reports[tool][0].get("loss")}
                    threaded = [rep["threaded"] for rep in reports[tool] if "threaded" in rep]
                    if threaded:
                        results[key]["threaded"] = any(threaded)
                    if rounds > 1:
                        results[key]["rounds"] = [rep.get("seconds") for rep in reports[tool]]
                print(f"  {key}: {results[key]}", file=sys.stderr, flush=True)
    return results


def ratio_of(results, dtype, cell):
    depth, width, batch = cell
    mine = results.get(f"fastbp/{dtype}/{depth}/{width}/{batch}", {}).get("seconds")
    peers = [results.get(f"{t}/{dtype}/{depth}/{width}/{batch}", {}).get("seconds") for t in TOOLS[1:]]
    peers = [p for p in peers if p]
    return (min(peers) / mine) if (mine and peers) else None


def table(results, dtype, limits, grid):
    """Markdown: one row per cell: times, ratio, roofline."""
    lines = [
        f"{dtype}: one epoch (median of the run's epochs); ratio = faster peer / fastbp; roofline = fastbp's share "
        "of the GEMM rate and of the copy bandwidth",
        "",
        "| depth | width | batch | fastbp | PyTorch | JAX | ratio | GEMM | bandwidth |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def fmt(x):
        return "n/a" if not x else (f"{x * 1e3:.2f} ms" if x < 1 else f"{x:.2f} s")

    one_thread = any(key.startswith(f"{ONE_THREAD}/{dtype}/") for key in results)
    # a last column: fastbp on one thread, marked "(lost)" where its threads were slower, and "(same engine)"
    # where the default ran on one thread too (a JSON from before the "threaded" field marks every slower cell)
    if one_thread:
        lines[2] += " fastbp, 1 thread |"
        lines[3] += "---:|"
    ratios, lost, threaded_cells = [], 0, []
    tools = TOOLS + (ONE_THREAD,)
    for cell in grid:
        depth, width, batch = cell
        runs = {tool: results.get(f"{tool}/{dtype}/{depth}/{width}/{batch}", {}) for tool in tools}
        t = {tool: run.get("seconds") for tool, run in runs.items()}
        r = ratio_of(results, dtype, cell)
        if r:
            ratios.append(r)
        gemm = band = None
        if t["fastbp"] and limits:
            gemm, band = roofline(depth, width, batch, dtype, t["fastbp"], limits)
        row = (
            f"| {depth} | {width} | {batch} | {fmt(t['fastbp'])} | {fmt(t['torch'])} | {fmt(t['jax'])} | "
            + (f"{r:.2f}" if r else "n/a")
            + (f" | {gemm:.0%} | {band:.0%} |" if gemm is not None else " | | |")
        )
        if one_thread:
            threaded = runs["fastbp"].get("threaded")  # None: not recorded
            threaded_cells.append(threaded)
            slower = bool(threaded is not False and t["fastbp"] and t[ONE_THREAD] and t["fastbp"] > t[ONE_THREAD])
            lost += slower
            mark = " (lost)" if slower else (" (same engine)" if threaded is False else "")
            row += f" {fmt(t[ONE_THREAD])}{mark} |"
        lines.append(row)
    if ratios:
        import math

        geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        won = sum(r >= 1 for r in ratios)
        lines += ["", f"worst ratio {min(ratios):.2f}, geometric mean {geo:.2f}, cells won {won} of {len(ratios)}"]
    if one_thread:
        if None in threaded_cells:
            where = f"{len(grid)} cells"
        else:
            where = f"the {sum(threaded_cells)} cells where they ran"
        lines.append(f"fastbp's default threads slower than one thread on {lost} of {where}")
    return "\n".join(lines)


def heatmap(results, dtypes, path):
    """A figure of the ratios, one panel per dtype: rows (depth, width), columns batch; green where fastbp wins."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [(d, w) for d in DEPTHS for w in WIDTHS]
    fig, axes = plt.subplots(1, len(dtypes), figsize=(4.2 * len(dtypes), 4.6), layout="constrained", squeeze=False)
    for ax, dtype in zip(axes[0], dtypes):
        grid = np.full((len(rows), len(BATCHES)), np.nan)
        for i, (d, w) in enumerate(rows):
            for j, b in enumerate(BATCHES):
                r = ratio_of(results, dtype, (d, w, b))
                grid[i, j] = np.nan if r is None else r
        image = ax.imshow(np.log2(grid), cmap="RdYlGn", vmin=-2, vmax=2)
        for i in range(len(rows)):
            for j in range(len(BATCHES)):
                if np.isfinite(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=9)
        ax.set_xticks(range(len(BATCHES)), [str(b) for b in BATCHES])
        ax.set_xlabel("batch size")
        ax.set_yticks(range(len(rows)), [f"{d} x {w}" for d, w in rows])
        ax.set_ylabel("hidden layers x width")
        ax.set_title(f"{dtype}: faster peer / fastbp")
    fig.colorbar(image, ax=axes[0].tolist(), label="log2 ratio (> 0: fastbp faster)", shrink=0.8)
    fig.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", choices=DTYPES, action="append")
    parser.add_argument("--tool", choices=TOOLS, action="append")
    parser.add_argument("--quick", action="store_true", help="3 epochs per cell instead of 5")
    parser.add_argument("--rounds", type=int, default=1, help="turns each tool takes per cell (median of them)")
    parser.add_argument("--one-thread", action="store_true", help="also fastbp on one thread (a column)")
    parser.add_argument("--cells", help="only these cells, e.g. 1x32x1,3x1024x256 (depth x width x batch)")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--figure", type=Path, help="draw the heatmap of the ratios here (needs matplotlib)")
    parser.add_argument("--replot", type=Path, help="no measurement: print the tables and draw --figure from this JSON")
    args = parser.parse_args(argv)
    if args.child:
        tool, dtype, depth, width, batch, repeats = args.child
        return child(tool, dtype, int(depth), int(width), int(batch), int(repeats))
    grid = cells()
    if args.cells:
        grid = [tuple(int(v) for v in c.split("x")) for c in args.cells.split(",")]
    dtypes = args.dtype or list(DTYPES)
    if args.replot:
        saved = json.loads(args.replot.read_text())
        limits = (saved["limits"]["multiply_adds"], saved["limits"]["copy_bytes"])
        print(f"CPU: {saved.get('cpu', 'not recorded')}")
        for dtype in dtypes:
            print(table(saved["results"], dtype, limits, grid) + "\n")
        if args.figure:
            heatmap(saved["results"], dtypes, args.figure)
        return 0
    limits = machine_limits()
    cpu = cpu_name()
    print(f"CPU: {cpu}")
    print(
        f"machine: {limits[0]['float32'] / 1e9:.1f} G float32 and {limits[0]['float64'] / 1e9:.1f} G float64 "
        f"multiply-adds/s (np.dot of 2048 x 2048), {limits[1] / 1e9:.1f} GB/s (copy of 64 MiB)"
    )
    tools = (args.tool or list(TOOLS)) + ([ONE_THREAD] if args.one_thread else [])
    results = measure(dtypes, tools, 3 if args.quick else 5, grid, max(1, args.rounds))
    for dtype in dtypes:
        print()
        print(table(results, dtype, limits, grid))
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu, "limits": {"multiply_adds": limits[0], "copy_bytes": limits[1]},
                                         "results": results}, indent=1))  # fmt: skip
    if args.figure:
        heatmap(results, dtypes, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
