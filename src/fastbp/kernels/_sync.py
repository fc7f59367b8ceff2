"""Atomic operations and a spinning barrier for compiled code that runs on several threads at once.

numba has no atomics, so these are LLVM's (``atomicrmw`` and ``load atomic``,
both sequentially consistent: every write a thread made before it passes a
barrier is seen by the others after they pass it).  The
intrinsics name no machine address, only the symbols ``sched_yield`` and
LLVM's own, so functions using them are cached like any other.

The barrier is a counter in ``sync[BARRIER]`` that only grows: with T
threads, the k-th barrier of a run is passed when the counter reaches k * T.
While it waits a thread spins on the counter, and after ``SPINS_BEFORE_YIELD``
tries it gives its core away on each try (``sched_yield``), so a partner
that lost its core gets it back.  may set ``sync[ABORT]``; every waiting thread then returns False instead
of waiting on.
"""

import os
import platform

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from fastbp.config import jit

# Indices into the int64 sync array, a cache line (8 int64) apart so that the
# abort flag and the count of slow waits are not written on the line the counter spins on.
BARRIER = 0
ABORT = 8
INPUTS_BAD = 9  # 9 and 10, by step parity: set by a thread that found a NaN or an infinity in its rows
WAIT_CYCLES = 16  # thread 0's cycles spent in barriers during its last run, and the run's cycles
RUN_CYCLES = 17
SYNC_LENGTH = 24

# ~50 us with x86's pause on recent Intel CPUs (~54 ns each), a few us elsewhere; a wait that
# long means the partner lost its core (the steps between barriers take ~10 us).
SPINS_BEFORE_YIELD = 1000

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
_HAS_SCHED_YIELD = os.name == "posix"


def _declare(builder, return_type, name):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(return_type, []), name)


def _entry_pointer(context, builder, array_type, array, index):
    a = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, a, [index])


def _int64_array(a):
    return isinstance(a, types.Array) and a.dtype == types.int64 and a.ndim == 1


@intrinsic
def atomic_add(typingctx, array, index, value):
    """array[index] += value atomically; returns the value before.  array: int64, 1-D."""
    if not _int64_array(array):
        return None
    sig = types.int64(array, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        pointer = _entry_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.atomic_rmw("add", pointer, args[2], "seq_cst")

    return sig, codegen


@intrinsic
def atomic_load(typingctx, array, index):
    """array[index], read atomically.  array: int64, 1-D."""
    if not _int64_array(array):
        return None
    sig = types.int64(array, types.intp)

    def codegen(context, builder, signature, args):
        pointer = _entry_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(pointer, "seq_cst", 8)

    return sig, codegen


@intrinsic
def spin_pause(typingctx):
    """The CPU's spin-wait hint (x86 ``pause``); nothing elsewhere."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _X86:
            builder.call(_declare(builder, ir.VoidType(), "llvm.x86.sse2.pause"), [])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def yield_core(typingctx):
    """Give the core to another runnable thread (POSIX ``sched_yield``); a pause elsewhere."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _HAS_SCHED_YIELD:
            builder.call(_declare(builder, ir.IntType(32), "sched_yield"), [])
        elif _X86:
            builder.call(_declare(builder, ir.VoidType(), "llvm.x86.sse2.pause"), [])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def cycle_count(typingctx):
    """The CPU's cycle counter (x86: the time-stamp counter); 0 where LLVM has none."""
    sig = types.int64()

    def codegen(context, builder, signature, args):
        return builder.call(_declare(builder, ir.IntType(64), "llvm.readcyclecounter"), [])

    return sig, codegen


@jit
def barrier(sync, n_threads, passed):
    """Wait until all n_threads threads have called their (passed + 1)-th barrier of this run.

    Returns True when they have, False as soon as ``sync[ABORT]`` is set.
    Each thread counts the barriers it has passed itself (``passed``).
    """
    target = (passed + 1) * n_threads
    atomic_add(sync, BARRIER, 1)
    spins = 0
    while atomic_load(sync, BARRIER) < target:
        if atomic_load(sync, ABORT) != 0:
            return False
        spins += 1
        if spins > SPINS_BEFORE_YIELD:
            yield_core()
        else:
            spin_pause()
    return True


@jit
def wait_above(array, index, value, max_spins):
    """Spin until array[index] > value (True) or for max_spins tries (False).  array: int64, 1-D."""
    for _ in range(max_spins):
        if atomic_load(array, index) > value:
            return True
        spin_pause()
    return False
