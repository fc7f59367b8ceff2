"""Each public kernel against the pure-Python reference, and callable from user @njit code."""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastbp import kernels, reference
from fastbp.kernels._blas import gemm_strided
from fastbp.kernels.dense import _dense_forward_one_call

from conftest import ACTIVATIONS, assert_close

# (n, n_below, n_above): the first four and (1, 30, 30) run in loops, the others in BLAS (kernels._blas.blas_pays)
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 1, 4), (1, 30, 30), (32, 16, 1), (33, 17, 9), (64, 40, 30)]


def arrays(rng, dtype, *shapes, scale=1.0):
    return [np.ascontiguousarray(rng.uniform(-scale, scale, s).astype(dtype)) for s in shapes]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_dense_forward(shape, dtype, rng):
    n, k, m = shape
    y_prev, W, b = arrays(rng, dtype, (n, k), (k, m), (m,))
    z = np.full((n, m), np.nan, dtype)
    kernels.dense_forward(y_prev, W, b, z)
    ref = [[sum(W[i, j] * float(y_prev[s, i]) for i in range(k)) + b[j] for j in range(m)] for s in range(n)]
    assert_close(z, ref, dtype, what="z")


def test_shapes_cover_the_loops_and_blas():
    """SHAPES reach both ways of computing a product: BLAS for every product of BLAS_MIN_MULTIPLY_ADDS or
    more, and for narrow layers from a few hundred (32 samples of 16 units into one: 1.1 us in loops, 0.1
    us in BLAS); the loops for small products and for one sample of a wide layer."""
    from fastbp.config import BLAS_MIN_MULTIPLY_ADDS
    from fastbp.kernels._blas import blas_pays

    chosen = {shape: blas_pays(*shape) for shape in SHAPES}
    assert chosen == {(1, 1, 1): False, (1, 7, 3): False, (5, 1, 4): False, (1, 30, 30): False,
                      (32, 16, 1): True, (33, 17, 9): True, (64, 40, 30): True}  # fmt: skip
    assert all(blas_pays(n, k, BLAS_MIN_MULTIPLY_ADDS // (n * k) + 1) for n, k in [(1, 1), (3, 7), (40, 25)])


def test_rows_view_is_the_reshaped_slice(rng):
    """The engine's views: rows_view(a, start, n, m) reads and writes the entries of
    a[start : start + n * m].reshape(n, m), for 1-D and 2-D C-contiguous arrays of both dtypes."""
    from fastbp.kernels._jit_utils import rows_view

    @numba.njit
    def view_and_write(a, start, n, m):
        v = rows_view(a, start, n, m)
        copy = v.copy()
        v[n - 1, m - 1] = -1.0
        return copy

    for dtype in (np.float64, np.float32):
        flat = rng.normal(size=40).astype(dtype)
        expected = flat[5:17].reshape(3, 4).copy()
        np.testing.assert_array_equal(view_and_write(flat, 5, 3, 4), expected)
        assert flat[16] == -1.0 and flat[15] == expected[2, 2]
        grid = flat.reshape(8, 5).copy()
        expected = grid.reshape(1, 40).copy()
        np.testing.assert_array_equal(view_and_write(grid, 0, 1, 40), expected)
        assert grid[7, 4] == -1.0
    with pytest.raises(NotImplementedError, match="compiled code"):
        rows_view(flat, 0, 1, 1)


@pytest.mark.parametrize("n", [48, 360, 1000])
def test_dense_forward_in_row_blocks_equals_one_product(n, rng):
    """Products between BLAS_ONE_THREAD_MAX and BLAS_CHUNKED_MAX multiply-adds go to BLAS in row blocks
    (48 rows of 64 x 128 is one block, 360 is seven and a part); the result is that of one product."""
    from fastbp.config import BLAS_CHUNKED_MAX, BLAS_ONE_THREAD_MAX

    k, m = 64, 128
    assert (n * k * m <= BLAS_ONE_THREAD_MAX) == (n == 48)
    assert n * k * m <= BLAS_CHUNKED_MAX
    y_prev, W, b = arrays(rng, np.float64, (n, k), (k, m), (m,))
    z = np.full((n, m), np.nan)
    kernels.dense_forward(y_prev, W, b, z)
    np.testing.assert_allclose(z, y_prev @ W + b, rtol=1e-13, atol=1e-13)
    # the threaded engines' variant: one product, the same numbers
    pinned = np.full((n, m), np.nan)
    _dense_forward_one_call(y_prev, W, b, pinned)
    np.testing.assert_allclose(pinned, z, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_forward_and_derivative(name, dtype, rng):
    z = np.concatenate([rng.normal(0, 3, 40), [0.0, -0.0, 1e-300, -800.0, 800.0, 710.0, -745.5]]).astype(dtype)
    z = z.reshape(1, -1)
    y = np.empty_like(z)
    dy = np.empty_like(z)
    code = kernels.ACTIVATION_CODES[name]
    kernels.activation_forward(code, z, y)
    kernels.activation_derivative(code, z, y, dy)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dy))
    assert_close(y, [[reference.activation(name, float(v)) for v in z[0]]], dtype, what="f(z)")
    assert_close(dy, [[reference.activation_derivative(name, float(v)) for v in z[0]]], dtype, what="f'(z)")
    # the named pair gives the same
    y2, dy2 = np.empty_like(z), np.empty_like(z)
    getattr(kernels, f"{name}_forward")(z, y2)
    getattr(kernels, f"{name}_derivative")(z, y2, dy2)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(dy, dy2)


def test_relu_derivative_at_zero_is_zero():
    z = np.array([[0.0, -0.0, 1e-320, -1e-320]])
    y, dy = np.empty_like(z), np.empty_like(z)
    kernels.relu_forward(z, y)
    kernels.relu_derivative(z, y, dy)
    np.testing.assert_array_equal(dy, [[0.0, 0.0, 1.0, 0.0]])


def test_sigmoid_is_stable_and_warning_free():
    z = np.array([[-1e308, -800.0, -710.0, 0.0, 710.0, 800.0, 1e308]])
    y = np.empty_like(z)
    with np.errstate(all="raise"):
        kernels.sigmoid_forward(z, y)
    assert np.all((y >= 0) & (y <= 1))
    assert y[0, 3] == 0.5 and y[0, -1] == 1.0 and y[0, 0] == 0.0
    assert kernels.sigmoid_scalar(0.0) == 0.5
    d = np.empty_like(z)
    kernels.sigmoid_derivative(z, y, d)
    assert d[0, 3] == 0.25


def test_nan_propagates_through_activations():
    z = np.array([[np.nan]])
    for name in ACTIVATIONS:
        y, dy = np.empty_like(z), np.empty_like(z)
        code = kernels.ACTIVATION_CODES[name]
        kernels.activation_forward(code, z, y)
        kernels.activation_derivative(code, z, y, dy)
        assert np.isnan(y[0, 0]), name


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_error_terms_and_gradients(shape, name, dtype, rng):
    n, m, n_next = shape  # layer l has m units, layer l+1 has n_next
    z, d_next, W_next, y_prev_ = arrays(rng, dtype, (n, m), (n, n_next), (m, n_next), (n, 3))
    code = kernels.ACTIVATION_CODES[name]
    y = np.empty_like(z)
    kernels.activation_forward(code, z, y)

    d = arrays(rng, dtype, (n, m))[0]
    delta_out = np.empty_like(z)
    kernels.output_delta_squared_error(code, z, y, d, delta_out)
    for s in range(n):
        ref = reference.output_delta(y[s].tolist(), d[s].tolist(), z[s].tolist(), name)
        assert_close(delta_out[s], ref, dtype, what="output delta")
    E = kernels.squared_error(y, d)
    assert_close(E, np.mean([reference.squared_error(y[s].tolist(), d[s].tolist()) for s in range(n)]), dtype)

    delta = np.empty_like(z)
    kernels.hidden_delta(code, d_next, W_next, z, y, delta)
    for s in range(n):
        ref = reference.hidden_delta(d_next[s].tolist(), W_next.tolist(), z[s].tolist(), name)
        assert_close(delta[s], ref, dtype, what="hidden delta")

    # dE/dw_ij = delta_j y_i, averaged over the samples
    grad_W = np.full((3, m), np.nan, dtype)
    grad_b = np.full(m, np.nan, dtype)
    kernels.weight_gradient(y_prev_, delta, 1.0 / n, grad_W)
    kernels.bias_gradient(delta, 1.0 / n, grad_b)
    ref_W = [[sum(float(delta[s, j]) * float(y_prev_[s, i]) for s in range(n)) / n for j in range(m)] for i in range(3)]
    ref_b = [sum(float(delta[s, j]) for s in range(n)) / n for j in range(m)]
    assert_close(grad_W, ref_W, dtype, what="dE/dW")
    assert_close(grad_b, ref_b, dtype, what="dE/db")


@given(
    st.integers(0, 6), st.sampled_from([1, 3, 40]), st.sampled_from([1, 10, 300]), st.floats(0.1, 2.0),
    st.sampled_from([np.float64, np.float32]),
)  # fmt: skip
def test_weight_gradient_of_few_samples_and_many(n, n_below, n_above, scale, dtype):
    """Below MIN_GEMM_SAMPLES samples the loops, from there on BLAS where it pays: both equal the sums."""
    rng = np.random.default_rng(n * 1000 + n_below + n_above)
    y_prev, delta = arrays(rng, dtype, (n, n_below), (n, n_above))
    grad_W = np.full((n_below, n_above), np.nan, dtype)
    kernels.weight_gradient(y_prev, delta, scale, grad_W)
    y64, d64 = y_prev.astype(np.float64), delta.astype(np.float64)
    expected = [[scale * sum(y64[s, i] * d64[s, j] for s in range(n)) for j in range(n_above)] for i in range(n_below)]
    assert_close(grad_W, expected, dtype, what="dE/dW")


@given(
    st.integers(0, 7), st.sampled_from([1, 3, 40]), st.sampled_from([1, 10, 300]),
    st.sampled_from([np.float64, np.float32]),
)  # fmt: skip
def test_products_of_few_samples_and_many(n, n_below, n_above, dtype):
    """Below MIN_GEMM_SAMPLES samples a layer's products are one GEMV a sample, from there on one GEMM
    where BLAS pays: z = y_prev W + b and delta = delta_next W^T (then f') either way."""
    rng = np.random.default_rng(n * 1000 + n_below + n_above)
    y_prev, W, b, delta_next = arrays(rng, dtype, (n, n_below), (n_below, n_above), (n_above,), (n, n_above))
    z = np.full((n, n_above), np.nan, dtype)
    kernels.dense_forward(y_prev, W, b, z)
    y64, W64, d64 = y_prev.astype(np.float64), W.astype(np.float64), delta_next.astype(np.float64)
    assert_close(z, y64 @ W64 + b, dtype, what="z")
    pinned = np.full((n, n_above), np.nan, dtype)
    _dense_forward_one_call(y_prev, W, b, pinned)
    assert_close(pinned, z, dtype, what="z in one call")
    z_below = arrays(rng, dtype, (n, n_below))[0]
    y_below = np.empty_like(z_below)
    kernels.activation_forward(kernels.RELU, z_below, y_below)
    delta = np.full((n, n_below), np.nan, dtype)
    kernels.hidden_delta(kernels.RELU, delta_next, W, z_below, y_below, delta)
    assert_close(delta, (d64 @ W64.T) * (z_below > 0), dtype, what="hidden delta")


@given(st.integers(1, 300), st.floats(1e-4, 10), st.sampled_from([np.float64, np.float32]))
def test_gradient_descent_update(n, lr, dtype):
    rng = np.random.default_rng(n)
    params, grad = arrays(rng, dtype, (n,), (n,))
    expected = reference.update(params.astype(np.float64).tolist(), grad.astype(np.float64).tolist(), lr)
    kernels.gradient_descent_update(params, grad, dtype(lr))
    assert_close(params, expected, dtype, what="update")


def test_kernels_are_callable_from_user_njit_code():
    @numba.njit
    def two_layer_step(x, d, W1, b1, W2, b2, z1, y1, z2, y2, delta2, delta1, gW1, gb1, gW2, gb2, lr):
        kernels.dense_forward(x, W1, b1, z1)
        kernels.activation_forward(kernels.SIGMOID, z1, y1)
        kernels.dense_forward(y1, W2, b2, z2)
        kernels.sigmoid_forward(z2, y2)
        E = kernels.squared_error(y2, d)
        kernels.output_delta_squared_error(kernels.SIGMOID, z2, y2, d, delta2)
        kernels.hidden_delta(kernels.SIGMOID, delta2, W2, z1, y1, delta1)
        scale = 1.0 / x.shape[0]
        kernels.weight_gradient(y1, delta2, scale, gW2)
        kernels.bias_gradient(delta2, scale, gb2)
        kernels.weight_gradient(x, delta1, scale, gW1)
        kernels.bias_gradient(delta1, scale, gb1)
        kernels.gradient_descent_update(W1.reshape(-1), gW1.reshape(-1), lr)
        kernels.gradient_descent_update(b1, gb1, lr)
        kernels.gradient_descent_update(W2.reshape(-1), gW2.reshape(-1), lr)
        kernels.gradient_descent_update(b2, gb2, lr)
        return E

    # exercise 2(b) of the tutorial
    x = np.array([[1.0, 0.0]])
    d = np.array([[1.0]])
    W1, W2 = np.full((2, 2), 0.5), np.full((2, 1), 0.5)
    b1, b2 = np.zeros(2), np.zeros(1)
    bufs = [np.empty((1, 2)), np.empty((1, 2)), np.empty((1, 1)), np.empty((1, 1)), np.empty((1, 1)), np.empty((1, 2))]
    grads = [np.empty((2, 2)), np.empty(2), np.empty((2, 1)), np.empty(1)]
    E = two_layer_step(x, d, W1, b1, W2, b2, *bufs, *grads, 0.5)
    E_ref, W_new, b_new = reference.step([[[0.5, 0.5]] * 2, [[0.5], [0.5]]], [[0.0, 0.0], [0.0]],
                                         ["sigmoid", "sigmoid"], [[1.0, 0.0]], [[1.0]], 0.5)  # fmt: skip
    assert E == pytest.approx(E_ref, rel=1e-14)
    assert_close(W1, W_new[0], np.float64)
    assert_close(W2, W_new[1], np.float64)
    assert_close(b1, b_new[0], np.float64)
    assert_close(b2, b_new[1], np.float64)


def test_boundscheck_debug_mode_catches_a_wrong_shape(tmp_path):
    """With NUMBA_BOUNDSCHECK=1 the kernels check every index: a too-small output raises IndexError."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from fastbp import kernels\n"
        "try:\n"
        "    kernels.dense_forward(np.ones((4, 3)), np.ones((3, 2)), np.ones(2), np.empty((3, 2)))\n"
        "except IndexError as exc:\n"
        "    print('IndexError', exc)\n"
    )
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "IndexError" in result.stdout


@numba.njit
def _gemm_strided(trans_a, sizes, A, a_at, lda, B, b_at, ldb, C, c_at, ldc):
    gemm_strided(trans_a, False, sizes, A, a_at, lda, B, b_at, ldb, C, c_at, ldc)


@given(
    m=st.integers(1, 40),
    n=st.sampled_from([1, 1, 2, 4, 5, 7]),
    k=st.integers(1, 40),
    trans_a=st.booleans(),
    pad=st.integers(0, 5),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_gemm_strided_on_sub_matrices_equals_numpy(m, n, k, trans_a, pad, dtype):
    """C = op(A) @ B on sub-matrices of flat arrays (BLAS's column-major view, leading dimensions with padding),
    as the wide engine calls it: one column (a single sample) goes to GEMV, more to GEMM; entries of C
    outside the product keep their values."""
    rng = np.random.default_rng(m * 1000 + n * 100 + k)
    rows_a, cols_a = (k, m) if trans_a else (m, k)
    lda, ldb, ldc = rows_a + pad, k + pad, m + pad
    A = rng.normal(size=3 + lda * cols_a).astype(dtype)
    B = rng.normal(size=2 + ldb * n).astype(dtype)
    C = rng.normal(size=1 + ldc * n + 4).astype(dtype)
    before = C.copy()
    a_mat = A[3 : 3 + lda * cols_a].reshape(cols_a, lda).T[:rows_a]  # column-major view
    b_mat = B[2 : 2 + ldb * n].reshape(n, ldb).T[:k]
    expected = (a_mat.T if trans_a else a_mat).astype(np.float64) @ b_mat.astype(np.float64)
    _gemm_strided(trans_a, (m, n, k), A, 3, lda, B, 2, ldb, C, 1, ldc)
    got = C[1 : 1 + ldc * n].reshape(n, ldc).T[:m]
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * np.sqrt(k))
    outside = np.ones(C.shape, dtype=bool)
    for col in range(n):
        outside[1 + col * ldc : 1 + col * ldc + m] = False
    np.testing.assert_array_equal(C[outside], before[outside])
