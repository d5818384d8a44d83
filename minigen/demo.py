"""The engine at work before any model exists: fit a small MLP classifier to the 8x8
digits by gradient descent, with nothing but minigen tensors, and watch the loss fall.

    python -m minigen.demo [--steps 300] [--seed 0]
"""
import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from tqdm import tqdm

import minigen as mg


def init_mlp(sizes, gen):
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append(gen.normal((fan_in, fan_out), std=np.sqrt(2.0 / fan_in),
                                 requires_grad=True))
        params.append(mg.zeros(fan_out, requires_grad=True))
    return params


def mlp(params, x):
    for i in range(0, len(params) - 2, 2):
        x = mg.relu(x @ params[i] + params[i + 1])
    return x @ params[-2] + params[-1]


def cross_entropy(logits, labels):
    """-log softmax(logits)[label], averaged over the batch."""
    picked = mg.take_along_axis(mg.log_softmax(logits, axis=1), labels[:, None], axis=1)
    return -picked.mean()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args(argv)

    digits = load_digits()
    x = digits.data.astype(np.float32) / 16.0
    y = digits.target
    test = np.arange(len(x)) % 5 == 0  # the fixed split of DATA.md
    x_train, y_train = mg.tensor(x[~test]), y[~test]
    x_test, y_test = mg.tensor(x[test]), y[test]

    gen = mg.random.Generator(args.seed)
    params = init_mlp([64, 128, 10], gen)
    momentum = [np.zeros_like(p.data) for p in params]
    start = time.perf_counter()
    bar = tqdm(range(1, args.steps + 1), desc="training", unit="step")
    for step in bar:
        loss = cross_entropy(mlp(params, x_train), y_train)
        for p in params:
            p.grad = None
        loss.backward()
        with mg.no_grad():
            for p, m in zip(params, momentum):
                m *= 0.9
                m += p.grad.data
                p.data -= args.lr * m
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step == 1 or step % 50 == 0:
            tqdm.write(f"step {step:4d}  train loss {loss.item():.4f}")
    with mg.no_grad():
        logits = mlp(params, x_test)
        test_loss = cross_entropy(logits, y_test).item()
        accuracy = float((logits.numpy().argmax(1) == y_test).mean())
    print(f"test loss {test_loss:.4f}  test accuracy {accuracy:.3f}  "
          f"({time.perf_counter() - start:.1f} s)")
    return test_loss, accuracy


if __name__ == "__main__":
    main()
