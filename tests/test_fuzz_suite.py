"""The fuzz suite (``fuzz_harness``) in its CI profile: at least 2,000 generated cases over every public
entry point, each in a worker process; no crash, silent wrong answer, half-updated network or unclear error.

The full profile (10,000 cases): ``python tests/fuzz_harness.py --profile full``.  ``FASTBP_FUZZ_CASES``
sets another number of cases (the CI run with numba's bounds checks uses fewer).
"""

import os

import fuzz_harness

from conftest import FUZZ_TABLES


def test_fuzz_every_public_entry_point():
    n = int(os.environ.get("FASTBP_FUZZ_CASES", fuzz_harness.PROFILES["ci"]))
    tallies, failures, seconds = fuzz_harness.run_profile(n, seed=int(os.environ.get("FASTBP_FUZZ_SEED", 0)))
    total = sum(sum(counts.values()) for counts in tallies.values())
    FUZZ_TABLES.append((f"fuzz: {total} cases in {seconds:.0f} s", fuzz_harness.table(tallies)))
    assert total >= n
    assert all(sum(counts.values()) > 0 for counts in tallies.values())
    report = "\n".join(
        f"{outcome} in {group}: {detail}\n  case: {case!r}"[:1500] for group, outcome, detail, case in failures[:10]
    )
    assert not failures, f"{len(failures)} failing cases; the first:\n{report}"
