"""GEMM with BLAS's alpha, beta and leading dimensions, from compiled code.

numba's ``np.dot(a, b, out)`` always computes out = a @ b (alpha 1, beta 0) of
whole contiguous arrays, so a gradient-descent step would write dE/dW and then
read it again to update W (1.5 M parameters: ~1.5 ms more per step on W4,
512-1024-1024-10), and a thread could not take the gradient of a block of W's
rows without copying a block of columns of the layer's inputs.  These
intrinsics call the BLAS entry point numba's own ``np.dot`` uses
(``numba_xxgemm``, backed by scipy's BLAS), so functions using them are
cached like any other.

Both compute ``out = alpha * Y[:, col0 : col0 + r]^T @ delta + beta * out``
for ``out`` (r, m), ``Y`` (n, k), ``delta`` (n, m), all C-contiguous and of
one float dtype.  In BLAS's column-major view these buffers are out^T (m x r),
delta^T (m x n) and Y^T (k x n), so the call is
gemm('n', 't', m, r, n, alpha, delta, m, Y + col0, k, beta, out, m).

:func:`blas_pays` decides, for the kernels and the engine, when a product goes to BLAS at all.
"""

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.linalg import check_blas_return, ensure_blas, get_blas_kind

from fastbp.config import BLAS_MIN_MULTIPLY_ADDS, MIN_GEMM_SAMPLES, jit

_char = ir.IntType(8)
_void_p = ir.IntType(8).as_pointer()


def _typed(out, Y, delta):
    """The common float dtype of three C-contiguous 2-D arrays, or None."""
    if not all(isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C" for a in (out, Y, delta)):
        return None
    if not (out.dtype == Y.dtype == delta.dtype) or out.dtype not in (types.float32, types.float64):
        return None
    return out.dtype


def _emit_gemm(context, builder, dtype, arrays, col0, alpha, beta):
    """The numba_xxgemm call of the module docstring; ``arrays`` = (out, Y, delta) as (type, value) pairs."""
    ensure_blas()
    (out_t, out_v), (y_t, y_v), (d_t, d_v) = arrays
    out = context.make_array(out_t)(context, builder, out_v)
    y = context.make_array(y_t)(context, builder, y_v)
    d = context.make_array(d_t)(context, builder, d_v)
    r, m = cgutils.unpack_tuple(builder, out.shape, 2)
    n, k = cgutils.unpack_tuple(builder, y.shape, 2)
    ll_dtype = context.get_value_type(dtype)
    alpha_slot = cgutils.alloca_once_value(builder, alpha)
    beta_slot = cgutils.alloca_once_value(builder, beta)
    intp = context.get_value_type(types.intp)
    fnty = ir.FunctionType(
        ir.IntType(32),
        [_char, _char, _char, intp, intp, intp, _void_p, _void_p, intp, _void_p, intp, _void_p, _void_p, intp],
    )
    fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
    y_cols = builder.gep(builder.bitcast(y.data, ll_dtype.as_pointer()), [col0])
    res = builder.call(
        fn,
        (
            ir.Constant(_char, ord(get_blas_kind(dtype))),
            ir.Constant(_char, ord("n")),
            ir.Constant(_char, ord("t")),
            m,
            r,
            n,
            builder.bitcast(alpha_slot, _void_p),
            builder.bitcast(d.data, _void_p),
            m,
            builder.bitcast(y_cols, _void_p),
            k,
            builder.bitcast(beta_slot, _void_p),
            builder.bitcast(out.data, _void_p),
            m,
        ),
    )
    check_blas_return(context, builder, res)


@intrinsic
def gemm_accumulate(typingctx, W, Y, delta, alpha):
    """W += alpha * Y.T @ delta.  W (k, m), Y (n, k), delta (n, m): C-contiguous, one float dtype."""
    dtype = _typed(W, Y, delta)
    if dtype is None:
        return None
    sig = types.void(W, Y, delta, alpha)

    def codegen(context, builder, signature, args):
        zero = context.get_constant(types.intp, 0)
        alpha_v = context.cast(builder, args[3], signature.args[3], dtype)
        beta_v = context.get_constant(dtype, 1.0)
        _emit_gemm(context, builder, dtype, tuple(zip(signature.args[:3], args[:3])), zero, alpha_v, beta_v)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def gemm_columns(typingctx, out, Y, col0, delta):
    """out = Y[:, col0 : col0 + r].T @ delta: the gradient of rows col0.. of a layer's W (dE/dw_ij =
    sum_s y_i delta_j) without a copy of those columns.  out (r, m), Y (n, k), delta (n, m), as above;
    the caller keeps col0 + r <= k."""
    dtype = _typed(out, Y, delta)
    if dtype is None or not isinstance(col0, types.Integer):
        return None
    sig = types.void(out, Y, types.intp, delta)

    def codegen(context, builder, signature, args):
        arrays = ((signature.args[0], args[0]), (signature.args[1], args[1]), (signature.args[3], args[3]))
        one = context.get_constant(dtype, 1.0)
        zero = context.get_constant(dtype, 0.0)
        _emit_gemm(context, builder, dtype, arrays, args[2], one, zero)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def gemm_strided(typingctx, trans_a, trans_b, sizes, A, a_at, lda, B, b_at, ldb, C, c_at, ldc):
    """C = op(A) @ op(B) on sub-matrices of three flat arrays, in BLAS's column-major terms.

    ``trans_a``, ``trans_b``: True for 'T'; ``sizes`` = (M, N, K); the matrices start at entries
    ``a_at``, ``b_at``, ``c_at`` of the 1-D C-contiguous arrays A, B, C (one float dtype), with leading
    dimensions lda, ldb, ldc.  Nothing is checked: the caller keeps every entry inside its array.  With fewer
    than MIN_GEMM_SAMPLES columns (samples) and B not transposed it is one GEMV a column.
    """
    arrays = (A, B, C)
    if not all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in arrays):
        return None
    if not (A.dtype == B.dtype == C.dtype) or A.dtype not in (types.float32, types.float64):
        return None
    dtype = A.dtype
    sig = types.void(
        types.boolean, types.boolean, types.UniTuple(types.intp, 3), A, types.intp, types.intp, B, types.intp,
        types.intp, C, types.intp, types.intp,
    )  # fmt: skip

    def codegen(context, builder, signature, args):
        ensure_blas()
        t_a, t_b, shape, a_v, a_at_v, lda_v, b_v, b_at_v, ldb_v, c_v, c_at_v, ldc_v = args
        m, n, k = cgutils.unpack_tuple(builder, shape, 3)
        ll_dtype = context.get_value_type(dtype)

        def start(array_type, value, at):
            data = context.make_array(array_type)(context, builder, value).data
            return builder.bitcast(builder.gep(builder.bitcast(data, ll_dtype.as_pointer()), [at]), _void_p)

        def flag(b):
            return builder.select(b, ir.Constant(_char, ord("t")), ir.Constant(_char, ord("n")))

        one = cgutils.alloca_once_value(builder, context.get_constant(dtype, 1.0))
        zero = cgutils.alloca_once_value(builder, context.get_constant(dtype, 0.0))
        intp = context.get_value_type(types.intp)
        kind = ir.Constant(_char, ord(get_blas_kind(dtype)))
        a_start = start(signature.args[3], a_v, a_at_v)
        b_start = start(signature.args[6], b_v, b_at_v)
        c_start = start(signature.args[9], c_v, c_at_v)
        few_columns = builder.and_(
            builder.and_(builder.icmp_signed("<", n, ir.Constant(intp, MIN_GEMM_SAMPLES)), builder.not_(t_b)),
            builder.icmp_signed(">", k, ir.Constant(intp, 0)),  # GEMV does not write y when k = 0
        )
        with builder.if_else(few_columns) as (as_gemv, as_gemm):
            with as_gemv:
                # each column of C = op(A) @ that column of B, both contiguous: a GEMV, which OpenBLAS runs
                # without first copying A into its blocked layout (its GEMM kernels for AVX2 do copy)
                rows = builder.select(t_a, k, m)
                cols = builder.select(t_a, m, k)
                fnty = ir.FunctionType(
                    ir.IntType(32), [_char, _char, intp, intp, _void_p, _void_p, intp, _void_p, _void_p, _void_p]
                )
                fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemv")
                with cgutils.for_range(builder, n) as loop:
                    b_col = start(signature.args[6], b_v, builder.add(b_at_v, builder.mul(loop.index, ldb_v)))
                    c_col = start(signature.args[9], c_v, builder.add(c_at_v, builder.mul(loop.index, ldc_v)))
                    res = builder.call(
                        fn,
                        (kind, flag(t_a), rows, cols, builder.bitcast(one, _void_p), a_start, lda_v, b_col,
                         builder.bitcast(zero, _void_p), c_col),
                    )  # fmt: skip
                    check_blas_return(context, builder, res)
            with as_gemm:
                fnty = ir.FunctionType(
                    ir.IntType(32),
                    [_char, _char, _char, intp, intp, intp, _void_p, _void_p, intp, _void_p, intp, _void_p, _void_p,
                     intp],
                )  # fmt: skip
                fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
                res = builder.call(
                    fn,
                    (kind, flag(t_a), flag(t_b), m, n, k, builder.bitcast(one, _void_p), a_start, lda_v, b_start,
                     ldb_v, builder.bitcast(zero, _void_p), c_start, ldc_v),
                )  # fmt: skip
                check_blas_return(context, builder, res)
        return context.get_dummy_value()

    return sig, codegen


@jit
def blas_pays(n, n_below, n_above):
    """True if BLAS computes an (n, n_below) x (n_below, n_above) product sooner than the loops of ``kernels.dense``.

    A BLAS call costs ~45 ns plus ~0.08 ns per multiply-add (0.14 ns for a single sample); the loops (over
    samples s, units i below, then units j above, vectorised over j) take ~2.5 ns per (s, i) pair for the
    first 8 j and ~0.8 ns per further 8, as each z[s, j] waits for its previous multiply-add (measured, AMD
    EPYC, float64).  So loops win for a single sample of a wide layer, and BLAS from a few hundred
    multiply-adds on for narrow ones: 32 samples of 16 units into 1 take 1.1 us in loops, 0.1 us in BLAS.
    """
    chain_steps = n * n_below
    loops_ns = chain_steps * (2.5 + 0.8 * ((n_above - 1) // 8))
    blas_ns = 45.0 + (0.14 if n == 1 else 0.08) * chain_steps * n_above
    return n * n_below * n_above >= BLAS_MIN_MULTIPLY_ADDS or blas_ns < loops_ns
