"""The figures a linear_probe_acc stands beside: the same probe (minigen.eval.linear_probe:
logistic regression, C = 1.0, on standardised features of the train split, scored on the
test split) on the raw pixels x / (K - 1), and on the 4 * width features of the encoder as
initialised, untrained (the weights a run of that seed starts from).

    python -m minigen.representation.baselines [--data digits] [--width 32] [--seeds 0 1 2]
"""
import argparse

import numpy as np

from .. import data
from .. import eval as evaluation
from ..autograd import no_grad, tensor
from ..random import Generator
from .encoder import Encoder


def scaled(name, split, data_dir=None):
    x, y = data.load(name, split, data_dir=data_dir)
    return x.astype(np.float32) / np.float32(data.levels(name) - 1), y


def raw_pixel_probe(name, data_dir=None):
    (x, y), (x_test, y_test) = (scaled(name, s, data_dir) for s in ("train", "test"))
    return evaluation.linear_probe(x.reshape(len(x), -1), y,
                                   x_test.reshape(len(x_test), -1), y_test)


def random_encoder_probe(name, width=32, seed=0, data_dir=None, batch_size=500):
    """The probe on an untrained encoder drawn as a run of this seed draws it."""
    (x, y), (x_test, y_test) = (scaled(name, s, data_dir) for s in ("train", "test"))
    encoder = Encoder(x.shape[1], width, Generator([seed, 0]))

    def features(images):
        with no_grad():
            return np.concatenate([encoder(tensor(images[i:i + batch_size])).numpy()
                                   for i in range(0, len(images), batch_size)])
    return evaluation.linear_probe(features(x).astype(np.float64), y,
                                   features(x_test).astype(np.float64), y_test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data-dir", dest="data_dir")
    args = parser.parse_args(argv)
    print(f"{args.data}: linear probe (logistic regression, C = 1.0) on raw pixels: "
          f"{raw_pixel_probe(args.data, args.data_dir):.4f}")
    accuracies = [random_encoder_probe(args.data, args.width, s, args.data_dir)
                  for s in args.seeds]
    print(f"{args.data}: on an untrained encoder (width {args.width}, "
          f"{4 * args.width} features), seeds {args.seeds}: "
          f"{', '.join(f'{a:.4f}' for a in accuracies)}; mean {np.mean(accuracies):.4f}")


if __name__ == "__main__":
    main()
