"""Small compiled helpers shared by the engine and the generated code."""

from typing import Any

import numba
import numpy as np
from numba.core import cgutils, types
from numba.core.imputils import impl_ret_untracked
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array, populate_array

from fastbp.config import jit

_CACHE_ONLY: Any = {"cache": True}  # numba's type for jit_options has no "cache"


def as_rows(X):
    """X as 2-D rows: a 1-D array (one sample) becomes a (1, n) view; a 2-D array is returned as is."""
    raise NotImplementedError("as_rows is only callable from compiled code")


@overload(as_rows, jit_options=_CACHE_ONLY)
def _as_rows_overload(X):
    if X.ndim == 1:
        return lambda X: X[None, :]
    return lambda X: X


def rows_view(a, start, n, m):
    """The (n, m) C-contiguous view of entries ``start`` to ``start + n * m`` of the contiguous array a
    (any number of dimensions, read in C order): no copy, no allocation.  Compiled code only.

    numba's ``a[start:stop].reshape((n, m))`` calls a shape helper (~12 ns a view, measured here: AMD EPYC),
    which is most of a small network's pass; this view is built directly.  It holds no reference to a (no
    reference counting either): use it only while a is alive, and never return it to Python.  Unchecked,
    as numba's indexing: the caller keeps the range inside a.  Under ``NUMBA_BOUNDSCHECK=1`` it is the slice
    and ``reshape``, so that a range outside a raises there.
    """
    raise NotImplementedError("rows_view is only callable from compiled code")


@intrinsic
def _rows_view(typingctx, a, start, n, m):
    if not isinstance(a, types.Array) or a.layout != "C":
        return None
    sig = types.Array(a.dtype, 2, "C")(a, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        source = make_array(signature.args[0])(context, builder, args[0])
        view = make_array(signature.return_type)(context, builder)
        start, n, m = args[1:]
        itemsize = source.itemsize
        populate_array(
            view,
            data=builder.gep(source.data, [start]),
            shape=cgutils.pack_array(builder, [n, m]),
            strides=cgutils.pack_array(builder, [builder.mul(m, itemsize), itemsize]),
            itemsize=itemsize,
            meminfo=cgutils.get_null_value(source.meminfo.type),
            parent=cgutils.get_null_value(source.parent.type),
        )
        return impl_ret_untracked(context, builder, signature.return_type, view._getvalue())

    return sig, codegen


@overload(rows_view, jit_options=_CACHE_ONLY)
def _rows_view_overload(a, start, n, m):
    if numba.config.BOUNDSCHECK or a.layout != "C":
        return lambda a, start, n, m: a.reshape(a.size)[start : start + n * m].reshape((n, m))
    return lambda a, start, n, m: _rows_view(a, start, n, m)


@jit
def all_finite(A):
    """True if every entry of the 2-D array A is finite.

    x * 0 is 0 for every finite x and NaN for inf or NaN, so ``x * 0 != 0``
    flags exactly the bad entries.  The flags are OR-ed without a branch: an
    integer OR is associative, so LLVM vectorises the loop (~0.1 ns per
    entry; an early-exit loop, or a float sum, which LLVM may not reorder
    with fastmath off, runs at ~0.5 ns).
    """
    bad = 0
    for s in range(A.shape[0]):
        for j in range(A.shape[1]):
            bad |= A[s, j] * 0.0 != 0.0
    return bad == 0


@jit
def all_finite_flat(a):
    """True if every entry of the 1-D array a is finite (branch-free, as :func:`all_finite`)."""
    bad = 0
    for k in range(a.shape[0]):
        bad |= a[k] * 0.0 != 0.0
    return bad == 0


@jit
def all_within(A, low, high):
    """True if no entry of the array A (any shape and layout) is below ``low`` or above ``high``; NaN is neither."""
    bad = 0
    for v in A.flat:
        bad |= (v < low) | (v > high)
    return bad == 0


@jit
def splitmix64(state):
    """Next (state, 64 random bits) of the SplitMix64 generator; both uint64."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@jit
def shuffle_in_place(order, state):
    """Fisher-Yates shuffle of the int64 array ``order``; returns the new generator state."""
    for i in range(order.shape[0] - 1, 0, -1):
        state, bits = splitmix64(state)
        j = np.int64(bits % np.uint64(i + 1))
        tmp = order[i]
        order[i] = order[j]
        order[j] = tmp
    return state
