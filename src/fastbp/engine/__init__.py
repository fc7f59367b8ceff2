"""Whole-network compiled passes, private (every module's name starts with ``_``): ``_serial`` (one thread,
any depth), ``_threaded`` and ``_threaded_pass`` (``fit`` of one-hidden-layer networks on several threads),
``_wide`` (``fit`` of any depth on several threads) and ``_codegen`` (code generated per architecture for small
networks).  Built on ``fastbp.kernels``; used by ``fastbp.nn``."""
