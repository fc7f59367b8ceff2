"""Run the workloads W1-W6 for fastbp and every installed peer, and print one Markdown table.

Every measurement (one workload, one implementation, one size or dtype) runs in its own
subprocess, so JIT caches, thread pools and process-wide settings (JAX's x64 flag, PyTorch's
threads) of one implementation never touch another.  Each reports the median seconds per call
of timeit-style repeated samples (``benchmarks.workloads.measure``).  All subprocesses get the
same environment, so ratios such as fastbp / BLAS bound (W4) are same-environment ratios.

Usage, from the repository root with fastbp installed (``pip install -e .``)::

    python benchmarks/compare.py                 # everything (a few minutes)
    python benchmarks/compare.py --quick         # fewer and shorter samples
    python benchmarks/compare.py --only W1,W3    # some workloads
    python benchmarks/compare.py --unset-openblas-hints   # drop OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE for all
    python benchmarks/compare.py --wait-idle 120  # on a shared machine: wait for idle CPUs first

The table's ``ratio`` is median / median of the workload's reference implementation (for W5:
time(numerical_gradient) / time(gradients)); ``bar`` is the issue's target where it gave one;
``other load`` is how many cores other processes kept busy during the measurement.
"""

import argparse
import importlib
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The reference each workload's ratios are taken against; the first one that was measured.
REFERENCES = {
    "W1": ("numba_empty",),
    "W2": ("jax", "numpy"),
    "W3": ("jax", "numpy"),
    "W4": ("blas_bound",),
    "W5": ("gradients",),
    "W6": ("torch_import", "python_startup"),
}

# The bars of the performance issue: (implementation the bar applies to, text, test of its ratio).
# W5's depends on N and is built in bar_for().  Workloads without an entry have no stated bar
# (their ratio to the reference is still printed); add one here when the issue gives it.
BARS = {
    "W1": ("fastbp", "fastbp <= 3x numba_empty", lambda ratio: ratio <= 3.0),
}

# Every bar of the performance issue (and issue 6's digits bar lives in bench_digits_classifier.py):
# (workload, param or None, impl, peer or None, kind, threshold, text).  kind "faster": peer / impl >=
# threshold; "within": impl / peer <= threshold; "seconds": impl's median <= threshold.
ISSUE_BARS = [
    ("W1", None, "fastbp", "numba_empty", "within", 3.0, "W1: step <= 3x an empty @njit call"),
    ("W2", None, "fastbp", "jax", "faster", 1.3, "W2: >= 1.3x faster than JAX fori_loop"),
    ("W2", None, "fastbp", "torch", "faster", 1000.0, "W2: >= 1000x faster than PyTorch"),
    ("W3", None, "fastbp", "jax", "faster", 1.5, "W3: >= 1.5x faster than JAX lax.scan"),
    ("W3", None, "fastbp", "torch", "faster", 10.0, "W3: >= 10x faster than PyTorch"),
    ("W4", "float64", "fastbp", "blas_bound", "within", 1.10, "W4 float64: <= 1.10x the BLAS bound"),
    ("W4", "float64", "fastbp", "torch", "faster", 1.0, "W4 float64: faster than PyTorch"),
    ("W4", "float32", "fastbp", "blas_bound", "within", 1.10, "W4 float32: <= 1.10x the BLAS bound"),
    ("W4", "float32", "fastbp", "torch", "faster", 1.0, "W4 float32: faster than PyTorch"),
    ("W6", None, "fastbp_warm", None, "seconds", 0.6, "W6: warm cache <= 0.6 s"),
    ("W6", None, "fastbp_cold", None, "seconds", 3.0, "W6: empty cache <= 3 s"),
]


def bars_summary(results):
    """Markdown lines: each bar of the issue, the measured ratio or time, and whether it is met."""
    lines = ["| bar | measured | met |", "|---|---:|---|"]
    for w, param, impl, peer, kind, threshold, text in ISSUE_BARS:
        keys = [k for k in results if k[0] == w and k[1] == impl and (param is None or k[2] == param)]
        if not keys or "median" not in results[keys[0]]:
            lines.append(f"| {text} | not measured | n/a |")
            continue
        mine = results[keys[0]]["median"]
        if kind == "seconds":
            lines.append(f"| {text} | {mine:.3g} s | {'yes' if mine <= threshold else '**no**'} |")
            continue
        other = results.get((w, peer, keys[0][2]), {})
        if "median" not in other:
            lines.append(f"| {text} | {peer} not measured | n/a |")
            continue
        if kind == "faster":
            ratio = other["median"] / mine
            lines.append(f"| {text} | {ratio:.3g}x faster | {'yes' if ratio >= threshold else '**no**'} |")
        else:
            ratio = mine / other["median"]
            lines.append(f"| {text} | {ratio:.3g}x | {'yes' if ratio <= threshold else '**no**'} |")
    return "\n".join(lines)


# Cores kept busy by other processes above which a measurement counts as disturbed: on 2 cores,
# BLAS and PyTorch threads then wait on each other (W5's gradients at N ~ 1e5 measured 100x slower).
NOISY_LOAD = 0.3

OPENBLAS_HINTS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
ENV_SHOWN = (
    *OPENBLAS_HINTS,
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMBA_CACHE_DIR",
    "FASTBP_CACHE",
    "FASTBP_CACHE_DIR",
    "PYTHONDONTWRITEBYTECODE",
)


def load_workloads():
    """benchmarks.workloads, importable whether this file runs as a script or as ``-m benchmarks.compare``."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("benchmarks.workloads")


# ----------------------------------------------------------------------------- one measurement (child)


def blas_info():
    """The BLAS libraries loaded in this process (numpy's, and scipy's that numba's np.dot calls)."""
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        return "threadpoolctl not installed"
    found = []
    for lib in threadpoolctl.threadpool_info():
        if lib.get("user_api") == "blas":
            name = Path(lib.get("filepath", "?")).name
            found.append(
                f"{lib.get('internal_api')} {lib.get('version')} {lib.get('architecture', '')} "
                f"{lib.get('num_threads')} threads ({name})"
            )
    return "; ".join(sorted(found))


def child(workload, impl, param, quick):
    """Set up and time one measurement; print its result as one JSON line."""
    wl = load_workloads()
    options = dict(wl.QUICK if quick else wl.FULL)
    try:
        if workload == "W4":
            run = wl.setup_w4(impl, param)
        elif workload == "W5":
            run = wl.setup_w5(impl, param)
            if impl == "numerical_gradient":  # ~15 s a call at N = 1e5: few samples
                options = dict(wl.SLOW_QUICK if quick else wl.SLOW)
        elif workload == "W6":
            run = wl.setup_w6(impl)
        else:
            run = wl.SETUPS[workload](impl)
    except NotImplementedError as exc:
        print(json.dumps({"skip": str(exc)}))
        return
    result = wl.measure(run, **options)
    if workload == "W4":
        result["blas"] = blas_info()
    if impl.startswith("torch") and workload != "W6":
        result["torch_threads"] = importlib.import_module("torch").get_num_threads()
    print(json.dumps(result))


# ----------------------------------------------------------------------------- the whole comparison (parent)


def plan(wl, workloads):
    """(workload, impl, param) of every measurement, in table order."""
    for w in workloads:
        if w == "W4":
            for dtype in wl.DTYPES:
                for impl in wl.IMPLS[w]:
                    yield w, impl, dtype
        elif w == "W5":
            for key in wl.NUMGRAD_HIDDEN:
                for impl in wl.IMPLS[w]:
                    yield w, impl, key
        else:
            for impl in wl.IMPLS[w]:
                yield w, impl, None


def busy_seconds():
    """CPU seconds all processors have spent busy since boot (/proc/stat), or None where there is none."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def other_load(seconds=1.0):
    """Cores kept busy by other processes over the next ``seconds`` (this process sleeps)."""
    b0 = busy_seconds()
    time.sleep(seconds)
    b1 = busy_seconds()
    return None if b0 is None else (b1 - b0) / seconds


def wait_until_idle(limit, threshold=0.3):
    """Wait (up to ``limit`` seconds) until other processes use less than ``threshold`` cores."""
    deadline = time.monotonic() + limit
    while True:
        load = other_load()
        if load is None or load < threshold or time.monotonic() >= deadline:
            return load
        print(f"  waiting: other processes keep {load:.1f} cores busy", file=sys.stderr, flush=True)
        time.sleep(4.0)


def run_child(w, impl, param, quick, env):
    """One measurement in a new process; its result dict, with "other_load": the cores that processes
    other than the measurement kept busy meanwhile (a sign of a noisy number)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", w, impl]
    if param is not None:
        cmd.append(param)
    if quick:
        cmd.append("--quick")
    b0, c0, t0 = busy_seconds(), children_seconds(), time.monotonic()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800, check=False)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 1800 s"}
    b1, c1, t1 = busy_seconds(), children_seconds(), time.monotonic()
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    result = json.loads(lines[-1])
    if b0 is not None:
        result["other_load"] = max(0.0, ((b1 - b0) - (c1 - c0)) / (t1 - t0))
    return result


def format_time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def bar_for(wl, w, param):
    if w == "W5":
        n = wl.n_parameters(wl.numgrad_sizes(param))
        return "numerical_gradient", f"ratio >= 0.5 N = {0.5 * n:.6g}", lambda ratio: ratio >= 0.5 * n
    return BARS.get(w)


def label(wl, w, param):
    name = f"{w} {wl.WORKLOADS[w]}"
    if w == "W4":
        return f"{name} {param}"
    if w == "W5":
        return f"{name} N={wl.n_parameters(wl.numgrad_sizes(param))}"
    return name


def table(wl, results):
    """The Markdown table of all results (a dict keyed by (workload, impl, param))."""
    rows = [
        "| workload | impl | median | spread | other load | ratio | reference | bar | met |",
        "|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    for (w, impl, param), result in results.items():
        if "skip" in result:
            rows.append(f"| {label(wl, w, param)} | {impl} | skipped: {result['skip']} | | | | | | |")
            continue
        if "error" in result:
            rows.append(f"| {label(wl, w, param)} | {impl} | error: {result['error']} | | | | | | |")
            continue
        reference = next(
            (r for r in REFERENCES[w] if "median" in results.get((w, r, param), {})),
            None,
        )
        ratio = ""
        ratio_value = None
        if reference is not None:
            ratio_value = result["median"] / results[(w, reference, param)]["median"]
            ratio = f"{ratio_value:.3g}"
        bar_text = met = ""
        bar = bar_for(wl, w, param)
        if bar is not None and bar[0] == impl:
            bar_text = bar[1]
            met = "n/a" if ratio_value is None else ("yes" if bar[2](ratio_value) else "**no**")
        spread = f"{100 * (result['max'] - result['min']) / result['median']:.0f}%"
        samples = f" ({result['samples']}×{result['number']})"
        load = "?"
        if "other_load" in result:
            load = f"{result['other_load']:.2f}" + (" (!)" if result["other_load"] >= NOISY_LOAD else "")
        rows.append(
            f"| {label(wl, w, param)} | {impl} | {format_time(result['median'])}{samples} | {spread} | {load} "
            f"| {ratio} | {reference or ''} | {bar_text} | {met} |"
        )
    return "\n".join(rows)


def version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine(env):
    """Markdown lines describing the machine, the versions and the environment of the measurements."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "?"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    packages = ("fastbp", "numpy", "numba", "llvmlite", "scipy", "torch", "jax", "jaxlib", "scikit-learn")
    lines = [
        f"- CPU: {cpu}; {os.cpu_count()} logical cores ({usable} usable)",
        f"- Python {platform.python_version()} ({sys.executable}) on {platform.platform()}",
        "- " + ", ".join(f"{p} {version(p)}" for p in packages),
    ]
    shown = [f"{k}={env[k]}" for k in ENV_SHOWN if k in env]
    shown = ", ".join(shown) if shown else "none of " + ", ".join(ENV_SHOWN)
    lines.append(f"- environment of every measurement: {shown}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer and shorter samples")
    parser.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W3 (default: all)")
    parser.add_argument(
        "--unset-openblas-hints",
        action="store_true",
        help="remove OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from every measurement's environment",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measurement, wait up to SECONDS for other processes to leave the CPUs idle; "
        "repeat a measurement (up to twice) that other processes disturbed",
    )
    parser.add_argument("--child", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        w, impl, *param = args.child
        child(w, impl, param[0] if param else None, args.quick)
        return 0

    wl = load_workloads()
    workloads = [w.strip().upper() for w in args.only.split(",") if w.strip()] or list(wl.WORKLOADS)
    unknown = [w for w in workloads if w not in wl.WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {', '.join(wl.WORKLOADS)}")
    env = dict(os.environ)
    if args.unset_openblas_hints:
        for key in OPENBLAS_HINTS:
            env.pop(key, None)

    results = {}
    notes = {}
    start = time.perf_counter()
    for w, impl, param in plan(wl, workloads):
        t0 = time.perf_counter()
        result = None
        for attempt in range(3 if args.wait_idle > 0 else 1):
            if args.wait_idle > 0:
                wait_until_idle(args.wait_idle)
            new = run_child(w, impl, param, args.quick, env)
            if result is None or new.get("other_load", 0.0) < result.get("other_load", 0.0):
                result = new  # the least disturbed attempt
            if result.get("other_load", 0.0) < NOISY_LOAD:
                break
            print(f"  disturbed (other load {new['other_load']:.2f}), attempt {attempt + 1}", file=sys.stderr)
        results[(w, impl, param)] = result
        for key in ("blas", "torch_threads"):
            if key in result:
                notes.setdefault(key, set()).add(str(result[key]))
        shown = format_time(result["median"]) if "median" in result else result.get("skip") or result.get("error")
        print(f"{label(wl, w, param)} {impl}: {shown} [{time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)

    print(f"## fastbp benchmarks ({'quick' if args.quick else 'full'} run, {time.strftime('%Y-%m-%d %H:%M %Z')})\n")
    print("\n".join(machine(env)))
    if "blas" in notes:
        print("- BLAS in the W4 processes: " + " | ".join(sorted(notes["blas"])))
    if "torch_threads" in notes:
        print("- torch.get_num_threads(): " + ", ".join(sorted(notes["torch_threads"])))
    print(f"- one subprocess per measurement; total {time.perf_counter() - start:.0f} s\n")
    print(table(wl, results))
    print(
        "\nmedian: seconds per call, with (samples × calls per sample); spread: (max - min) / median of the "
        "samples; other load: cores that other processes kept busy during the measurement ((!): above "
        f"{NOISY_LOAD}, the number is suspect, on 2 cores especially with BLAS or PyTorch threads); ratio: "
        "median / the reference's median (W5: numerical_gradient / gradients)."
    )
    print("\n### The issue's bars\n")
    print(bars_summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
