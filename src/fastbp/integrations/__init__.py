"""fastbp inside other libraries: scikit-learn's estimators (``fastbp.sklearn``) and Dask (``fastbp.distributed``).
Each needs its optional dependency; ``import fastbp`` imports neither."""
