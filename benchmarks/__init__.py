"""fastbp's benchmarks: the workloads W1-W6, defined once, and the suites that time them.

* ``workloads.py`` defines every workload for fastbp and its peers (setup functions that
  return zero-argument callables, compiled and with their arrays allocated);
* ``bench_*.py`` are the asv suites (``asv run``, configured by ``asv.conf.json`` at the
  repository root);
* ``compare.py`` runs every workload for fastbp and each installed peer, one subprocess per
  measurement, and prints a Markdown table (``python benchmarks/compare.py --quick``).

``tests/test_bench.py`` runs the same workloads through pytest-benchmark (once each, as a smoke
test, unless ``--benchmark-enable``).  This file makes ``benchmarks`` a package, so that both asv
(``from .workloads import ...``) and pytest (``from benchmarks.workloads import ...``) can import it.
"""
