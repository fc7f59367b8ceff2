"""benchmarks/jit_loop.py, a user's compiled loop against the same loop in PyTorch and JAX, as a smoke test:
each installed tool runs each loop and reports a time, and every tool computes the same numbers (the same
initial parameters, data and steps in float64), so the benchmark times the same work."""

import pytest

from benchmarks import jit_loop


@pytest.fixture(scope="module")
def results():
    return jit_loop.measure(rounds=1, repeats=1)


@pytest.mark.parametrize("loop", jit_loop.LOOPS)
def test_each_tool_times_the_loop_and_computes_the_same(results, loop):
    by_tool = results[loop]
    assert by_tool["fastbp"]["seconds"] > 0
    peers = [tool for tool in jit_loop.TOOLS[1:] if jit_loop.installed(tool)]
    assert sorted(by_tool) == sorted(["fastbp", *peers])
    for tool in peers:
        assert by_tool[tool]["seconds"] > 0
        assert by_tool[tool]["result"] == pytest.approx(by_tool["fastbp"]["result"], rel=1e-9), tool
    if not peers:
        pytest.skip("neither torch nor jax is installed: only fastbp's loop ran")


def test_the_loops_learn(results):
    """The numbers compared above are those of training that works: the Huber loss falls from 0.344 (the
    initial network's) and the squared error of the imitation from 12.9."""
    assert results["huber"]["fastbp"]["result"] < 0.3
    assert results["sgd"]["fastbp"]["result"] < 0.05


def test_table_gives_the_ratio_to_the_faster_peer():
    fake = {"huber": {"fastbp": {"seconds": 0.002}, "torch": {"seconds": 0.1}, "jax": {"seconds": 0.004}}}
    assert "| huber | 2 ms | 100 ms | 4 ms | 2.00 |" in jit_loop.table(fake)
