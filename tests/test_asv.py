"""The asv commands of docs/performance.md end in a dashboard with data: asv machine, one quick benchmark run with the
commit hash set, asv publish; the published graph of that benchmark holds a measured time."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_asv_run_then_publish_gives_a_dashboard_with_a_result(tmp_path):
    pytest.importorskip("asv")
    if not (ROOT / ".git").exists():
        pytest.skip("asv needs the git repository (a source checkout)")
    # asv.conf.json with its results and pages in tmp_path (asv reads // comments; json does not)
    text = "\n".join(
        line for line in (ROOT / "asv.conf.json").read_text().splitlines() if not line.strip().startswith("//")
    )
    conf = json.loads(re.sub(r",(\s*[}\]])", r"\1", text))
    conf.update(
        repo=str(ROOT), benchmark_dir=str(ROOT / "benchmarks"), env_dir=str(tmp_path / "env"),
        results_dir=str(tmp_path / "results"), html_dir=str(tmp_path / "html"),
        branches=["HEAD"],  # whatever is checked out: a clone of another branch, or a detached commit
    )  # fmt: skip
    config = tmp_path / "asv.conf.json"
    config.write_text(json.dumps(conf))
    env = dict(os.environ, HOME=str(tmp_path))  # asv's machine file goes to $HOME
    asv = [sys.executable, "-m", "asv"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)

    def run(*args):
        out = subprocess.run([*asv, *args, "--config", str(config)], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=600)  # fmt: skip
        assert out.returncode == 0, f"asv {args[0]}: {out.stdout[-2000:]}\n{out.stderr[-2000:]}"
        return out.stdout

    run("machine", "--yes")
    run("run", "--python=same", "--quick", "--set-commit-hash", head.stdout.strip(), "--bench", r"XorStep\.time_step")
    run("publish")
    graphs = [
        p for p in (tmp_path / "html" / "graphs").rglob("bench_xor.XorStep.time_step.json") if "summary" not in p.parts
    ]
    assert graphs, "asv publish wrote no graph for XorStep.time_step"
    points = json.loads(graphs[0].read_text())  # [[revision, [one time per impl]]]
    times = [t for _, values in points for t in (values if isinstance(values, list) else [values]) if t is not None]
    assert times and all(0 < t < 1 for t in times), points
    assert (tmp_path / "html" / "index.html").exists()


def test_no_asv_suite_has_a_module_level_setup_by_accident():
    """asv calls a module-level ``setup`` (or ``teardown``) of a benchmark file before (after) every benchmark in
    it, with the benchmark's parameters: a helper imported under that name (bench_digits_classifier once imported
    digits_classifier.setup) fails each parametrized benchmark under asv while the test suite, which calls the
    classes' methods, passes."""
    import importlib

    for path in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        module = importlib.import_module(f"benchmarks.{path.stem}")
        for hook in ("setup", "teardown", "setup_cache"):
            assert not hasattr(module, hook), f"benchmarks/{path.name} has a module-level {hook}: asv would call it"
