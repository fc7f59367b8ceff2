"""W += alpha * Y^T @ delta in one BLAS call (GEMM with beta = 1), from compiled code.

numba's ``np.dot(a, b, out)`` always computes out = a @ b (alpha 1, beta 0), so a
gradient-descent step would write dE/dW and then read it again to update W:
1.5 M parameters cost ~1.5 ms more per step on W4 (512-1024-1024-10).  GEMM
can add its product into W directly.  This intrinsic calls the same BLAS
entry point numba's own ``np.dot`` uses (``numba_xxgemm``, backed by
scipy's BLAS), so functions using it are cached like any other.
"""

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.linalg import check_blas_return, ensure_blas, get_blas_kind

_char = ir.IntType(8)
_void_p = ir.IntType(8).as_pointer()


@intrinsic
def gemm_accumulate(typingctx, W, Y, delta, alpha):
    """W += alpha * Y.T @ delta.  W (k, m), Y (n, k), delta (n, m): C-contiguous, one float dtype.

    In BLAS's column-major view these buffers are W^T (m x k), Y^T (k x n) and
    delta^T (m x n), so the call is W^T += alpha * delta^T @ (Y^T)^T:
    gemm('n', 't', m, k, n, alpha, delta, m, Y, k, 1, W, m).
    """
    if not all(isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C" for a in (W, Y, delta)):
        return None
    if not (W.dtype == Y.dtype == delta.dtype) or W.dtype not in (types.float32, types.float64):
        return None
    dtype = W.dtype
    sig = types.void(W, Y, delta, alpha)

    def codegen(context, builder, signature, args):
        ensure_blas()
        w_arg, y_arg, d_arg, alpha_arg = args
        w = context.make_array(W)(context, builder, w_arg)
        y = context.make_array(Y)(context, builder, y_arg)
        d = context.make_array(delta)(context, builder, d_arg)
        k, m = cgutils.unpack_tuple(builder, w.shape, 2)
        n, _ = cgutils.unpack_tuple(builder, y.shape, 2)
        ll_dtype = context.get_value_type(dtype)
        alpha_slot = cgutils.alloca_once_value(builder, context.cast(builder, alpha_arg, signature.args[3], dtype))
        beta_slot = cgutils.alloca_once_value(builder, ir.Constant(ll_dtype, 1.0))
        intp = context.get_value_type(types.intp)
        fnty = ir.FunctionType(
            ir.IntType(32),
            [_char, _char, _char, intp, intp, intp, _void_p, _void_p, intp, _void_p, intp, _void_p, _void_p, intp],
        )
        fn = cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
        kind = ir.Constant(_char, ord(get_blas_kind(dtype)))
        res = builder.call(
            fn,
            (
                kind,
                ir.Constant(_char, ord("n")),
                ir.Constant(_char, ord("t")),
                m,
                k,
                n,
                builder.bitcast(alpha_slot, _void_p),
                builder.bitcast(d.data, _void_p),
                m,
                builder.bitcast(y.data, _void_p),
                k,
                builder.bitcast(beta_slot, _void_p),
                builder.bitcast(w.data, _void_p),
                m,
            ),
        )
        check_blas_return(context, builder, res)
        return context.get_dummy_value()

    return sig, codegen
