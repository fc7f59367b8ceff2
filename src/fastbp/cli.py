"""The ``fastbp`` command (also ``python -m fastbp``)."""

import argparse
import sys
import time

import numpy as np

XOR_INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_TARGETS = np.array([[0.0], [1.0], [1.0], [0.0]])


def _xor(args):
    from .network import Network

    net = Network([2, 2, 1], activations=["sigmoid", "sigmoid"], seed=args.seed)
    print("Training the tutorial's XOR network: 2-2-1, sigmoid hidden and output units,")
    print(
        f"squared error, full batch of 4 samples, learning rate eta = {args.lr}, "
        f"{args.epochs} epochs, seed {args.seed}."
    )
    print()
    n_reports = 10
    chunk = max(1, args.epochs // n_reports)
    losses = []
    start = time.perf_counter()
    done = 0
    print(f"{'epoch':>7}  {'loss E':>12}")
    while done < args.epochs:
        n = min(chunk, args.epochs - done)
        history = net.fit(XOR_INPUTS, XOR_TARGETS, epochs=n, lr=args.lr, batch_size=4, shuffle=False)
        losses.extend(history.loss)
        done += n
        print(f"{done:>7}  {history.loss[-1]:>12.6f}")
    elapsed = time.perf_counter() - start
    Y = net.forward(XOR_INPUTS)
    print()
    print("learned truth table:")
    print(" x1  x2   target   output  rounded")
    for x, d, y in zip(XOR_INPUTS, XOR_TARGETS, Y):
        print(f" {x[0]:>2.0f}  {x[1]:>2.0f}   {d[0]:>6.0f}   {y[0]:.4f}  {round(y[0]):>7d}")
    correct = int(np.sum(np.round(Y) == XOR_TARGETS))
    print()
    print(f"final loss E = {losses[-1]:.6g}; {correct}/4 correct; training took {elapsed:.3f} s (compilation included)")
    return 0 if correct == 4 else 1


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastbp", description="Backpropagation with numba kernels, from the tutorial."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    xor = sub.add_parser("xor", help="train the tutorial's 2-2-1 sigmoid network on XOR and print the truth table")
    xor.add_argument("--epochs", type=int, default=5000, help="full-batch epochs (default 5000)")
    xor.add_argument("--lr", type=float, default=2.0, help="learning rate eta (default 2.0)")
    xor.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    xor.set_defaults(func=_xor)
    return parser


def main(argv=None):
    """Entry point of the ``fastbp`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
