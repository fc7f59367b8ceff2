"""asv: the performance map of ``size_grid.py`` -- one shuffled epoch of Adam training per cell of the grid
(depth x width x batch), for fastbp and, where installed, PyTorch and JAX, in float32 and float64."""

from .size_grid import BATCHES, DEPTHS, DTYPES, EPOCHS, TOOLS, WIDTHS


class SizeGridEpoch:
    """One epoch of a 64-(width x depth)-10 ReLU/softmax network, cross-entropy, Adam(1e-3), mini-batches of
    ``batch`` (n = 256 samples for batch 1, else 4096)."""

    params = [list(TOOLS), list(DTYPES), list(DEPTHS), list(WIDTHS), list(BATCHES)]
    param_names = ["tool", "dtype", "depth", "width", "batch"]
    timeout = 600
    number = 1
    repeat = (1, 5, 60.0)

    def setup(self, tool, dtype, depth, width, batch):
        try:
            self.run = EPOCHS[tool](depth, width, batch, dtype)
        except ImportError as exc:
            raise NotImplementedError(f"{tool} is not installed") from exc  # asv's skip
        self.run()  # compiles

    def time_epoch(self, tool, dtype, depth, width, batch):
        self.run()
