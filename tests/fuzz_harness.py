"""The fuzz suite's runner: cases drawn by hypothesis, each run in a child process, each outcome classified.

Every case is one call of a public entry point (see ``fuzz_cases``), run in a
long-lived worker process.  A worker that dies (a segfault, an abort, a heap
error) or hangs fails the case it was running, and a new worker takes the
next one, so one crash costs one case, not the run.  Each case ends in one of

* ``clear error`` -- a documented error (ValueError, TypeError, a subclass
  such as DivergenceError, or a command-line error with its exit code) with a
  message, and everything the call was given left exactly as it was;
* ``correct result`` -- accepted, and the result agrees with an oracle (the
  pure-Python reference, a second computation, or the call's invariants);
* ``unclear error`` -- any other exception, a traceback, an empty message;
* ``crash`` -- the worker process died or hung;
* ``silent wrong answer`` -- accepted, and the oracle disagrees;
* ``half-updated network`` -- an error, after which the network, optimizer
  or estimator differs from before.

Profiles: ``ci`` (2,000 cases, run by the test suite) and ``full`` (10,000):

    python tests/fuzz_harness.py --profile full

prints the table of outcomes per entry point and exits 1 if any case was a
crash, a silent wrong answer, a half-updated network or an unclear error.
"""

import argparse
import collections
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUTCOMES = (
    "clear error",
    "correct result",
    "unclear error",
    "crash",
    "silent wrong answer",
    "half-updated network",
)
FAILURES = ("unclear error", "crash", "silent wrong answer", "half-updated network")
PROFILES = {"ci": 2000, "full": 10000}
CASE_TIMEOUT = 120.0  # seconds: the first call of an architecture compiles it


def _send(stream, obj):
    data = pickle.dumps(obj)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _receive(stream):
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    (size,) = struct.unpack("<Q", head)
    return pickle.loads(stream.read(size))


class Worker:
    """A child process that runs cases one at a time; restarted after it dies."""

    def __init__(self):
        self.proc = None
        self.log = tempfile.TemporaryFile()
        self.restarts = 0

    def _start(self):
        env = dict(os.environ, PYTHONFAULTHANDLER="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env, cwd=tempfile.gettempdir(),
        )  # fmt: skip

    def _last_log_lines(self, n=6):
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()[-n:]
        self.log.seek(0)
        self.log.truncate()
        return " | ".join(lines)

    def run(self, group, case, timeout=CASE_TIMEOUT):
        """(outcome, detail) of one case."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            _send(self.proc.stdin, (group, case))
            ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
            if not ready:
                self.proc.kill()
                self._stop()
                self.restarts += 1
                return "crash", f"no answer in {timeout:.0f} s: {self._last_log_lines()}"
            return _receive(self.proc.stdout)
        except (EOFError, BrokenPipeError, pickle.UnpicklingError):
            code = self.proc.wait()
            self._stop()
            self.restarts += 1
            return "crash", f"worker exited with {code}: {self._last_log_lines()}"

    def _stop(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout):
            stream.close()

    def close(self):
        self._stop()
        self.log.close()


def _worker_main():
    """Read (group, case) from stdin, answer (outcome, detail) on the original stdout, until stdin closes."""
    import warnings

    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed by the calls goes to the log, not into the answers
    sys.stdout = sys.stderr
    warnings.simplefilter("ignore")
    import fuzz_cases

    requests = sys.stdin.buffer
    while True:
        try:
            group, case = _receive(requests)
        except EOFError:
            return
        try:
            answer = fuzz_cases.execute(group, case)
        except BaseException as exc:  # the executor itself failed: report it rather than die
            answer = ("unclear error", f"executor: {type(exc).__name__}: {exc}")
        _send(answers, answer)


def shares(n_cases, names, weights):
    """Cases per group: ``n_cases`` split in proportion to the weights (largest remainders), each >= 1."""
    total = sum(weights[name] for name in names)
    exact = {name: n_cases * weights[name] / total for name in names}
    counts = {name: max(1, int(exact[name])) for name in names}
    for name in sorted(names, key=lambda k: exact[k] - int(exact[k]), reverse=True):
        if sum(counts.values()) >= n_cases:
            break
        counts[name] += 1
    return counts


def run_profile(n_cases, seed=0, groups=None, progress=None):
    """Draw and run ``n_cases`` cases, split over the groups by weight; returns (tallies {group: Counter},
    failures [(group, outcome, detail, case)], seconds)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    import fuzz_cases

    names = groups or list(fuzz_cases.GROUPS)
    counts = shares(n_cases, names, {name: fuzz_cases.GROUPS[name].weight for name in names})
    tallies = {name: collections.Counter() for name in names}
    failures = []
    worker = Worker()
    start = time.perf_counter()
    done = 0

    def run_group(name, count):
        @hypothesis_seed(seed)
        @settings(
            max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        )  # fmt: skip
        @given(fuzz_cases.GROUPS[name].strategy())
        def one_case(case):
            nonlocal done
            outcome, detail = worker.run(name, case)
            tallies[name][outcome] += 1
            if outcome in FAILURES:
                failures.append((name, outcome, detail, case))
            done += 1
            if progress is not None:
                progress(done)

        one_case()

    try:
        for name in names:
            run_group(name, counts[name])
    finally:
        worker.close()
    return tallies, failures, time.perf_counter() - start


def table(tallies):
    """Markdown table: one row per entry point group, one column per outcome, and the totals."""
    head = "| entry points | cases | " + " | ".join(OUTCOMES) + " |"
    rule = "|---" * (len(OUTCOMES) + 2) + "|"
    rows = [head, rule]
    total = collections.Counter()
    for name, counts in tallies.items():
        total.update(counts)
        rows.append(f"| {name} | {sum(counts.values())} | " + " | ".join(str(counts[o]) for o in OUTCOMES) + " |")
    rows.append(f"| **all** | **{sum(total.values())}** | " + " | ".join(f"**{total[o]}**" for o in OUTCOMES) + " |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run fastbp's fuzz suite and print the table of outcomes.")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--cases", type=int, help="number of cases (default: the profile's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--group", action="append", help="only these entry point groups (repeatable)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker_main()
    n = args.cases or PROFILES[args.profile]

    def progress(done):
        if done % 500 == 0:
            print(f"  {done} cases", file=sys.stderr, flush=True)

    tallies, failures, seconds = run_profile(n, seed=args.seed, groups=args.group, progress=progress)
    print(table(tallies))
    print(f"\n{sum(sum(c.values()) for c in tallies.values())} cases in {seconds:.0f} s, seed {args.seed}")
    for group, outcome, detail, case in failures[:20]:
        print(f"\n{outcome} in {group}: {detail}\n  case: {case!r}"[:2000])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
