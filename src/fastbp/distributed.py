"""``fastbp.distributed``: training on Dask (``fastbp.integrations.dask``) under its documented name."""

from .integrations.dask import (
    CONFIG_KEYS,
    MODES,
    RESULT_COLUMNS,
    SweepTable,
    batch_rows,
    fit_data_parallel,
    sweep,
)

__all__ = ["fit_data_parallel", "sweep", "batch_rows", "SweepTable", "MODES", "CONFIG_KEYS", "RESULT_COLUMNS"]
