"""Whole-network compiled passes (private): ``serial`` (one thread, any depth), ``threaded`` (``fit`` of
one-hidden-layer networks on several threads) and ``codegen`` (code generated per architecture for small
networks).  Built on ``fastbp.kernels``; used by ``fastbp.nn``."""
