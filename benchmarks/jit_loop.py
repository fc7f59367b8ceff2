"""A user's own compiled loop around a network: fastbp.jit against the same loop in PyTorch and JAX.

Three loops, each as its users write it, all from the same initial parameters in float64 (so that each
tool computes the same numbers, which the smoke test checks):

- ``huber``: a loss of the user's own (Huber, delta 1) trained with Adam(lr=0.01), 1-32-32-1 tanh, 2048
  samples in order, batches of 64, 10 epochs (320 steps).  fastbp: ``examples/custom_loss.py``'s
  ``huber_epochs`` (``jit.forward``, the loss's derivative, ``jit.backward``, ``kernels.optimizer_update``,
  all in one ``@numba.njit`` call).  PyTorch: the usual Python loop with ``F.huber_loss``, ``backward`` and
  ``torch.optim.Adam``.  JAX: ``jax.jit`` of a ``lax.scan`` over the steps, ``jax.grad`` of the Huber loss,
  Adam written in ``jax.numpy``.
- ``sgd``: 5,000 ``jit.sgd_step`` calls (squared error, lr 0.02) on batches of 32 taken in turn from 4096
  (state, force) pairs, 2-16-1 tanh, in one compiled loop; PyTorch's Python loop with ``torch.optim.SGD``;
  JAX's ``lax.fori_loop``.
- ``simulation``: ``examples/simulation.py``'s cart, 1,000 time steps, the network (2-16-1) called once per
  step on one state.  PyTorch: a Python loop under ``torch.no_grad()``; JAX: ``jax.jit`` of a
  ``lax.fori_loop``.

Every tool runs on two threads where it has a setting for it.  The tools take turns ``--rounds`` times;
each turn times ``--repeats`` runs after a warm-up run (which compiles); a time is the median over all of
them.  ratio = the faster peer's time / fastbp's (> 1: fastbp is faster).

    python benchmarks/jit_loop.py                 # all three loops, every installed tool: a table
    python benchmarks/jit_loop.py --rounds 5 --json jit_loop.json
"""

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.compare import format_time

LOOPS = ("huber", "sgd", "simulation")
TOOLS = ("fastbp", "torch", "jax")
HUBER = dict(sizes=[1, 32, 32, 1], n=2048, batch=64, epochs=10, lr=0.01)
SGD = dict(sizes=[2, 16, 1], n=4096, batch=32, steps=5000, lr=0.02)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example(name):
    """The module ``examples/<name>.py`` of this repository."""
    spec = importlib.util.spec_from_file_location(f"fastbp_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def initial_network(sizes):
    """The fastbp network every tool starts from (tanh hidden layers, identity output, seed 0)."""
    import fastbp

    return fastbp.Network(sizes, ["tanh"] * (len(sizes) - 2) + ["identity"], seed=0)


def huber_data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(HUBER["n"], 1))
    D = np.sin(X) + 0.05 * rng.normal(size=X.shape)
    D[rng.random(HUBER["n"]) < 0.05] += 5.0
    return X, D


def sgd_data():
    sim = example("simulation")
    rng = np.random.default_rng(1)
    states = rng.uniform(-2, 2, size=(SGD["n"], 2))
    return states, (-sim.K * states[:, :1] - sim.C * states[:, 1:]).copy()


def sgd_starts():
    """The first row of each step's batch: the data in turn."""
    step_rows = np.arange(SGD["steps"]) * SGD["batch"]
    return step_rows % (SGD["n"] - SGD["batch"] + 1)


# ----------------------------------------------------------------------------- fastbp


def fastbp_loop(loop):
    """A function that runs ``loop`` once from the initial parameters and returns its result."""
    import numba

    import fastbp
    from fastbp import jit

    if loop == "huber":
        X, D = huber_data()
        net = initial_network(HUBER["sizes"])
        theta0, b = net.flat_parameters.copy(), HUBER["batch"]
        model = net.to_jit(max_batch=b)
        Y, dY, grad = np.empty((b, 1)), np.empty((b, 1)), np.empty(net.n_params)
        m, v = np.zeros(net.n_params), np.zeros(net.n_params)
        hyper = fastbp.Adam(lr=HUBER["lr"]).hyper()
        huber_epochs = example("custom_loss").huber_epochs

        def run():
            net.flat_parameters[:] = theta0
            m[:] = 0.0
            v[:] = 0.0
            return huber_epochs(model, X, D, Y, dY, grad, m, v, hyper, HUBER["lr"], 1.0, b, HUBER["epochs"])

        return run
    if loop == "sgd":
        states, forces = sgd_data()
        net = initial_network(SGD["sizes"])
        theta0, model, starts = net.flat_parameters.copy(), net.to_jit(max_batch=SGD["batch"]), sgd_starts()

        @numba.njit
        def steps(model, states, forces, starts, batch, lr):
            E = 0.0
            for start in starts:
                E = jit.sgd_step(model, states[start : start + batch], forces[start : start + batch], lr)
            return E

        def run():
            net.flat_parameters[:] = theta0
            return steps(model, states, forces, starts, SGD["batch"], SGD["lr"])

        return run
    sim = example("simulation")
    net = initial_network(SGD["sizes"])
    model, state, force = net.to_jit(max_batch=1), np.empty((1, 2)), np.empty((1, 1))
    return lambda: sim.simulate(model, 1.5, 0.0, True, state, force)[0]


# ----------------------------------------------------------------------------- PyTorch


def torch_loop(loop):
    import torch

    torch.set_num_threads(2)
    sizes = HUBER["sizes"] if loop == "huber" else SGD["sizes"]
    net = initial_network(sizes)
    layers = []
    for k, W in enumerate(net.weights):
        linear = torch.nn.Linear(W.shape[0], W.shape[1], dtype=torch.float64)
        layers += [linear] + ([torch.nn.Tanh()] if k < len(net.weights) - 1 else [])
    model = torch.nn.Sequential(*layers)
    initial = [(torch.from_numpy(W.T.copy()), torch.from_numpy(b.copy())) for W, b in zip(net.weights, net.biases)]

    def reset():
        with torch.no_grad():
            for linear, (W, b) in zip(model[::2], initial):
                linear.weight.copy_(W)
                linear.bias.copy_(b)

    if loop == "huber":
        X, D = (torch.from_numpy(a) for a in huber_data())
        batch = HUBER["batch"]

        def run():
            reset()
            opt = torch.optim.Adam(model.parameters(), lr=HUBER["lr"])
            for _ in range(HUBER["epochs"]):
                total = 0.0
                for start in range(0, X.shape[0], batch):
                    opt.zero_grad()
                    loss = torch.nn.functional.huber_loss(model(X[start : start + batch]), D[start : start + batch])
                    loss.backward()
                    opt.step()
                    total += loss.item() * batch
            return total / X.shape[0]

        return run
    if loop == "sgd":
        states, forces = (torch.from_numpy(a) for a in sgd_data())
        batch, starts = SGD["batch"], sgd_starts().tolist()

        def run():
            reset()
            opt = torch.optim.SGD(model.parameters(), lr=SGD["lr"])
            for start in starts:
                opt.zero_grad()
                error = model(states[start : start + batch]) - forces[start : start + batch]
                loss = 0.5 * (error * error).sum(dim=1).mean()
                loss.backward()
                opt.step()
            return loss.item()

        return run
    sim = example("simulation")
    reset()

    def run():
        x, v = 1.5, 0.0
        state = torch.empty((1, 2), dtype=torch.float64)
        with torch.no_grad():
            for _ in range(sim.STEPS):
                state[0, 0], state[0, 1] = x, v
                v += sim.DT * float(model(state)[0, 0])
                x += sim.DT * v
        return x

    return run


# ----------------------------------------------------------------------------- JAX


def jax_loop(loop):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    sizes = HUBER["sizes"] if loop == "huber" else SGD["sizes"]
    net = initial_network(sizes)
    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(net.weights, net.biases)]

    def forward(params, X):
        for W, b in params[:-1]:
            X = jnp.tanh(X @ W + b)
        W, b = params[-1]
        return X @ W + b

    if loop == "huber":
        X, D = huber_data()
        batch, lr = HUBER["batch"], HUBER["lr"]
        steps_per_epoch = X.shape[0] // batch
        Xb = jnp.asarray(X.reshape(steps_per_epoch, batch, 1))
        Db = jnp.asarray(D.reshape(steps_per_epoch, batch, 1))

        def huber(params, x, d):
            r = jnp.abs(forward(params, x) - d)
            return jnp.mean(jnp.where(r <= 1.0, 0.5 * r * r, r - 0.5))

        def step(carry, xd):
            params, m, v, t = carry
            loss, g = jax.value_and_grad(huber)(params, *xd)
            t = t + 1
            m = jax.tree_util.tree_map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
            v = jax.tree_util.tree_map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
            c1, c2 = 1 - 0.9**t, 1 - 0.999**t

            def update(p, m, v):
                return p - lr * (m / c1) / (jnp.sqrt(v / c2) + 1e-8)

            return (jax.tree_util.tree_map(update, params, m, v), m, v, t), loss

        @jax.jit
        def train(params):
            zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
            carry = (params, zeros, zeros, 0)
            for _ in range(HUBER["epochs"]):
                carry, losses = jax.lax.scan(step, carry, (Xb, Db))
            return jnp.mean(losses)

        return lambda: float(train(params))
    if loop == "sgd":
        states, forces = (jnp.asarray(a) for a in sgd_data())
        batch, lr, starts = SGD["batch"], SGD["lr"], jnp.asarray(sgd_starts())

        def squared(params, x, d):
            error = forward(params, x) - d
            return 0.5 * jnp.mean(jnp.sum(error * error, axis=1))

        def step(k, carry):
            params, _ = carry
            x = jax.lax.dynamic_slice_in_dim(states, starts[k], batch)
            d = jax.lax.dynamic_slice_in_dim(forces, starts[k], batch)
            loss, g = jax.value_and_grad(squared)(params, x, d)
            return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, g), loss

        train = jax.jit(lambda params: jax.lax.fori_loop(0, SGD["steps"], step, (params, 0.0))[1])
        return lambda: float(train(params))
    sim = example("simulation")

    def tick(_, xv):
        x, v = xv
        f = forward(params, jnp.stack([x, v]).reshape(1, 2))[0, 0]
        v = v + sim.DT * f
        return x + sim.DT * v, v

    simulate = jax.jit(lambda x0: jax.lax.fori_loop(0, sim.STEPS, tick, (x0, 0.0))[0])
    return lambda: float(simulate(1.5))


MAKERS = {"fastbp": fastbp_loop, "torch": torch_loop, "jax": jax_loop}


# ----------------------------------------------------------------------------- timing and the table


def installed(tool):
    return tool == "fastbp" or importlib.util.find_spec(tool) is not None


def measure(loops=LOOPS, rounds=3, repeats=5, tools=TOOLS):
    """{loop: {tool: {"seconds": median, "result": the run's result}}} for every installed tool."""
    runs = {(loop, tool): MAKERS[tool](loop) for loop in loops for tool in tools if installed(tool)}
    results = {loop: {} for loop in loops}
    for (loop, tool), run in runs.items():
        results[loop][tool] = {"result": float(run()), "times": []}  # warm-up: compiles
    for _ in range(rounds):
        for (loop, tool), run in runs.items():
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                results[loop][tool]["times"].append(time.perf_counter() - start)
    for loop in loops:
        for entry in results[loop].values():
            entry["seconds"] = statistics.median(entry.pop("times"))
    return results


def table(results):
    lines = ["| loop | fastbp | PyTorch | JAX | ratio |", "|---|---:|---:|---:|---:|"]
    for loop, by_tool in results.items():
        cells = [format_time(by_tool[t]["seconds"]) if t in by_tool else "-" for t in TOOLS]
        peers = [by_tool[t]["seconds"] for t in TOOLS[1:] if t in by_tool]
        ratio = f"{min(peers) / by_tool['fastbp']['seconds']:.2f}" if peers else "-"
        lines.append(f"| {loop} | " + " | ".join(cells) + f" | {ratio} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loops", nargs="+", choices=LOOPS, default=list(LOOPS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = measure(args.loops, args.rounds, args.repeats)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
