"""benchmarks/size_grid.py, the performance map, as a smoke test: one cell of each installed tool runs and
reports a time, and the table, the roofline and the heatmap are made from the results."""

import json

import pytest

from benchmarks import size_grid


@pytest.mark.parametrize("tool", size_grid.TOOLS + (size_grid.ONE_THREAD,))
def test_one_cell_runs_and_reports_a_time(tool, capsys, monkeypatch):
    from fastbp.engine import _threaded

    monkeypatch.setattr(_threaded, "_requested_threads", _threaded._requested_threads)  # fastbp_1thread sets it
    monkeypatch.setattr(_threaded, "_one_thread_until", -float("inf"))  # not contended by an earlier test's run
    threads = _threaded.get_num_threads()
    size_grid.child(tool, "float32", 1, 32, 32, 1)
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    if "skipped" in report:
        pytest.skip(report["skipped"])
    assert report["seconds"] > 0 and report["loss"] > 0
    if tool.startswith("fastbp"):  # 64-32-10 at batch 32: the one-hidden-layer split, unless on one thread
        assert report["threaded"] is (tool == "fastbp" and threads > 1)


def test_table_roofline_and_heatmap(tmp_path):
    pytest.importorskip("matplotlib")
    results = {}
    for depth, width, batch in size_grid.cells():
        for tool, seconds in (("fastbp", 0.01), ("torch", 0.03), ("jax", 0.02)):
            results[f"{tool}/float32/{depth}/{width}/{batch}"] = {
                "seconds": seconds * (1 + (tool == "jax" and width > 500))
            }
    limits = ({"float32": 1e11, "float64": 5e10}, 1e10)
    text = size_grid.table(results, "float32", limits, size_grid.cells())
    assert "| 3 | 1024 | 256 | 10.00 ms | 30.00 ms | 40.00 ms | 3.00 |" in text
    assert "worst ratio 2.00, geometric mean" in text and "cells won 24 of 24" in text
    gemm, bandwidth = size_grid.roofline(1, 32, 32, "float32", 0.01, limits)
    assert gemm == pytest.approx(3 * 4096 * size_grid.n_parameters(1, 32) / 0.01 / 1e11)
    assert bandwidth == pytest.approx(8 * size_grid.n_parameters(1, 32) * 4 * 128 / 0.01 / 1e10)
    size_grid.heatmap(results, ["float32"], tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 10_000


def test_rounds_take_turns_and_report_the_median(monkeypatch):
    calls = []
    times = {"fastbp": iter([0.3, 0.1, 0.2]), "torch": iter([1.0, 3.0, 2.0]), "jax": iter([0.5, 0.5, 0.9])}

    def fake_child(tool, dtype, cell, repeats, env):
        calls.append(tool)
        return {"seconds": next(times[tool]), "loss": 1.0}

    monkeypatch.setattr(size_grid, "run_child", fake_child)
    results = size_grid.measure(["float32"], list(size_grid.TOOLS), 5, [(1, 32, 32)], rounds=3)
    assert calls == ["fastbp", "torch", "jax", "torch", "jax", "fastbp", "jax", "fastbp", "torch"]
    assert results["fastbp/float32/1/32/32"] == {"seconds": 0.2, "loss": 1.0, "rounds": [0.3, 0.1, 0.2]}
    assert results["torch/float32/1/32/32"]["seconds"] == 2.0 and results["jax/float32/1/32/32"]["seconds"] == 0.5


def test_the_one_thread_column_marks_the_cells_where_two_threads_lost():
    grid = [(1, 32, 1), (3, 1024, 256)]
    results = {}
    for (depth, width, batch), two, one in zip(grid, (0.010, 0.030), (0.020, 0.015)):
        for tool, seconds in (("fastbp", two), ("torch", 0.05), ("jax", 0.04), (size_grid.ONE_THREAD, one)):
            results[f"{tool}/float32/{depth}/{width}/{batch}"] = {"seconds": seconds}
    text = size_grid.table(results, "float32", None, grid)
    assert "| fastbp, 1 thread |" in text.splitlines()[2]
    assert "| 1 | 32 | 1 | 10.00 ms | 50.00 ms | 40.00 ms | 4.00 | | | 20.00 ms |" in text
    assert "| 3 | 1024 | 256 | 30.00 ms | 50.00 ms | 40.00 ms | 1.33 | | | 15.00 ms (lost) |" in text
    assert text.endswith("fastbp's default threads slower than one thread on 1 of 2 cells")
    assert "1 thread" not in size_grid.table({k: v for k, v in results.items() if "1thread" not in k}, "float32",
                                             None, grid)  # fmt: skip


def test_the_one_thread_column_does_not_count_cells_where_fastbp_ran_on_one_thread_anyway():
    grid = [(1, 32, 1), (3, 1024, 256)]
    results = {}
    for (depth, width, batch), two, one, threaded in zip(grid, (0.012, 0.030), (0.010, 0.015), (False, True)):
        results[f"fastbp/float32/{depth}/{width}/{batch}"] = {"seconds": two, "threaded": threaded}
        for tool, seconds in (("torch", 0.05), ("jax", 0.04), (size_grid.ONE_THREAD, one)):
            results[f"{tool}/float32/{depth}/{width}/{batch}"] = {"seconds": seconds}
    text = size_grid.table(results, "float32", None, grid)
    assert "| 1 | 32 | 1 | 12.00 ms | 50.00 ms | 40.00 ms | 3.33 | | | 10.00 ms (same engine) |" in text
    assert "| 3 | 1024 | 256 | 30.00 ms | 50.00 ms | 40.00 ms | 1.33 | | | 15.00 ms (lost) |" in text
    assert text.endswith("fastbp's default threads slower than one thread on 1 of the 1 cells where they ran")
