"""benchmarks/size_grid.py, the performance map, as a smoke test: one cell of each installed tool runs and
reports a time, and the table, the roofline and the heatmap are made from the results."""

import json

import pytest

from benchmarks import size_grid


@pytest.mark.parametrize("tool", size_grid.TOOLS)
def test_one_cell_runs_and_reports_a_time(tool, capsys):
    size_grid.child(tool, "float32", 1, 32, 32, 1)
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    if "skipped" in report:
        pytest.skip(report["skipped"])
    assert report["seconds"] > 0 and report["loss"] > 0


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
