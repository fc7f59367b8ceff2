"""Exceptions fastbp raises besides the plain ValueError and TypeError of bad input."""


class DivergenceError(FloatingPointError):
    """Training produced a loss that is not finite (inf or NaN), usually from too large a learning rate.

    ``fit`` stops at the first such batch and puts back the parameters at
    which the last finite loss was measured, so the network stays usable.

    Attributes
    ----------
    epoch : int
        0-based epoch of the batch whose loss was not finite.
    batch : int
        0-based index of that batch within its epoch.
    history : History
        The losses of the epochs completed before it.
    """

    def __init__(self, epoch, batch, history):
        self.epoch = epoch
        self.batch = batch
        self.history = history
        super().__init__(
            f"training diverged: the loss of epoch {epoch}, batch {batch} is not finite; "
            f"the parameters before that step were kept (try a smaller lr)"
        )

    def __reduce__(self):
        # rebuilt from the three arguments (not from self.args, the message), so that it survives
        # pickling, e.g. from a Dask worker to the client
        return type(self), (self.epoch, self.batch, self.history)
