"""Sample quality, the same code for every model that draws images (GANs, diffusion, any
model with `sample`), and the mode-collapse check on 2-D toy data.

The features are minigen's own, not Inception's: a small CNN classifier trained by minigen
on the train split of the same dataset,

    conv 3x3 1 -> 32, ReLU, conv 3x3 32 -> 64, ReLU, max-pool 2, conv 3x3 64 -> 128, ReLU,
    global average pool (the 128 features), linear 128 -> classes (the head)

(3x3 convolutions with padding 1), trained once with Adam and cached on disk
($MINIGEN_CACHE, else ~/.cache/minigen, under quality/), keyed by the dataset and the
classifier's config; its test accuracy is stored with it and reported as
`classifier_accuracy`. The features are divided by their root mean square over the train
split (a constant of the cached classifier), so that the KID kernel sees inputs of unit
scale, as Inception's pool features are (unscaled, its cubic kernel reached values near
4000 and KID's noise buried the figures). Every figure below is therefore an *analogue* of the published
metric on these features, comparable only with figures of the same classifier (the same
cache key). The reference is the train split (its features' mean and covariance for FID,
a fixed subset of REFERENCE_COUNT of its features for KID and precision/recall), so the
floor of each figure is what the held-out test images score as "samples".

    fid_local   ||mu_s - mu_r||^2 + Tr(S_s + S_r - 2 (S_s S_r)^(1/2))   (Heusel et al. 2017;
                the matrix square root is scipy.linalg.sqrtm). Biased: it falls as the
                sample count grows, so it is always computed on the same count.
    kid_local   1000 x the unbiased MMD^2 with the kernel k(a, b) = (a.b / d + 1)^3
                (Binkowski et al. 2018), averaged over KID_SUBSETS subsets of KID_SUBSET
                samples and as many reference features: unbiased at any count, the
                primary figure on small data.
    is_local    exp(E_x KL(p(y | x) || p(y))) of the classifier's softmax over all the
                samples (Salimans et al. 2016), one split.
    precision   the share of samples inside the k-NN ball (k = 3) of some reference
    recall      feature, and of reference features inside the k-NN ball of some sample
                (Kynkaanniemi et al. 2019): quality and coverage apart.

quality_metrics(model, spec, generator, n) samples a model and scores it; image_quality
scores given samples; `python -m minigen.quality DATA [RUN ...]` prints the floor (the test
images) and the figures of trained runs.

On toy-8gaussians and toy-rings, mode_coverage gives the standard mode-collapse check
(Srivastava et al. 2017, VEEGAN): a sample is high quality within 3 standard deviations of
a mode (the data generator's own centres, radii and noise), and a mode is hit when at
least MODE_MIN_SAMPLES of 2000 (0.5%) high-quality samples are near it.
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from . import checkpoint, data, nn, optim
from . import functional as F
from .autograd import no_grad, tensor
from .ops import relu
from .random import Generator

REFERENCE_COUNT = 2000      # train features for KID and precision/recall
KID_SUBSETS, KID_SUBSET = 10, 1000
PR_NEIGHBOURS = 3
MODE_MIN_SHARE = 0.005      # a mode is hit by at least this share of the samples
FEATURE_BATCH = 500
CACHE_VERSION = 2


@dataclass(frozen=True)
class ClassifierConfig:
    """How the feature classifier is built and trained; all of it is in the cache key.
    epochs None: the dataset's default (EPOCHS)."""
    channels: tuple = (32, 64, 128)
    epochs: int = None
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0


EPOCHS = {"digits": 40, "digits-bin": 40, "fashion-mnist": 2, "fashion-mnist-bin": 2,
          "mnist": 2, "shapes": 4}
CLASSIFIER = ClassifierConfig()   # what every metric uses; tests swap in a tiny one


class FeatureClassifier(nn.Module):
    """The CNN of the module docstring; features(x) are the 128 pooled activations."""

    def __init__(self, in_channels, classes, channels=(32, 64, 128), generator=None):
        super().__init__()
        c1, c2, c3 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1, generator=generator)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1, generator=generator)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1, generator=generator)
        self.head = nn.Linear(c3, classes, generator=generator)

    def features(self, x):
        h = relu(self.conv2(relu(self.conv1(x))))
        h = relu(self.conv3(F.max_pool2d(h, 2)))
        return h.mean(axis=(2, 3))

    def forward(self, x):
        return self.head(self.features(x))


def cache_folder():
    return os.path.join(os.environ.get("MINIGEN_CACHE") or
                        os.path.join(os.path.expanduser("~"), ".cache", "minigen"), "quality")


def _levels(name):
    levels = data.levels(name)
    if levels is None:
        raise ValueError(f"sample quality needs an image dataset; {name} is not one")
    return levels


def _inputs(x, levels):
    """uint8 levels -> float32 in [0, 1], the classifier's input."""
    return np.asarray(x, dtype=np.float32) * np.float32(1.0 / (levels - 1))


class Reference:
    """A dataset's trained classifier and its train-split reference statistics."""

    def __init__(self, name, classifier, levels, info, mean, cov, subset, scale=1.0):
        self.name, self.classifier, self.levels, self.info = name, classifier, levels, info
        self.scale = scale
        self.mean, self.cov, self.subset = mean, cov, subset

    @property
    def accuracy(self):
        return self.info["test_accuracy"]

    def features(self, images):
        """(N, 128) float64 features (over the scale) and (N, classes) softmax of uint8
        images."""
        feats, probs = [], []
        with no_grad():
            for start in range(0, len(images), FEATURE_BATCH):
                x = tensor(_inputs(images[start:start + FEATURE_BATCH], self.levels))
                f = self.classifier.features(x)
                logits = self.classifier.head(f).numpy().astype(np.float64)
                feats.append(f.numpy().astype(np.float64) / self.scale)
                logits -= logits.max(axis=1, keepdims=True)
                p = np.exp(logits)
                probs.append(p / p.sum(axis=1, keepdims=True))
        return np.concatenate(feats), np.concatenate(probs)


_LOADED = {}


def cache_key(name, config):
    config = asdict(config)
    config["epochs"] = config["epochs"] or EPOCHS.get(name, 5)
    text = json.dumps({"dataset": name, "version": CACHE_VERSION, **config}, sort_keys=True)
    return config, f"{name}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def reference(name, config=None, progress=True):
    """The Reference of dataset `name`: loaded from the cache, or trained (once, with a
    note on stderr) and cached."""
    config, key = cache_key(name, config or CLASSIFIER)
    path = os.path.join(cache_folder(), key + ".npz")
    if path in _LOADED:
        return _LOADED[path]
    if os.path.exists(path):
        state = checkpoint.load(path)
    else:
        state = train_classifier(name, config, progress)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        checkpoint.save(path, state)
        if progress:
            print(f"quality: cached the {name} classifier in {path} (test accuracy "
                  f"{state['info']['test_accuracy']:.4f})", file=sys.stderr)
    model = FeatureClassifier(state["info"]["in_channels"], state["info"]["classes"],
                              tuple(config["channels"]))
    model.load_state_dict(state["params"])
    model.eval()
    ref = Reference(name, model, _levels(name), state["info"], state["mean"], state["cov"],
                    state["subset"], state["info"]["feature_scale"])
    _LOADED[path] = ref
    return ref


def train_classifier(name, config, progress=True):
    """Train the classifier on the train split (cross-entropy, Adam, batches drawn by
    data.BatchSampler from the config's seed) and compute the reference statistics."""
    levels = _levels(name)
    x, y = data.load(name, "train")
    x_test, y_test = data.load(name, "test")
    if y is None:
        raise ValueError(f"sample quality: {name} has no labels to train its classifier on")
    classes = int(y.max()) + 1
    generator = Generator([config["seed"], 16])
    model = FeatureClassifier(x.shape[1], classes, tuple(config["channels"]), generator)
    opt = optim.Adam(list(model.parameters()), lr=config["lr"])
    sampler = data.BatchSampler(len(x), min(config["batch_size"], len(x)), config["seed"])
    steps = config["epochs"] * len(sampler)
    if progress:
        print(f"quality: training the {name} feature classifier ({steps} steps; once, then "
              f"cached in {cache_folder()})", file=sys.stderr)
    started = time.perf_counter()
    for step in range(steps):
        index = sampler.indices(step)
        loss = F.cross_entropy(model(tensor(_inputs(x[index], levels))), tensor(y[index]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    ref = Reference(name, model, levels, {}, None, None, None)
    train_features, _ = ref.features(x)
    scale = float(np.sqrt((train_features ** 2).mean()))
    train_features /= scale
    _, test_probs = ref.features(x_test)
    accuracy = float((test_probs.argmax(axis=1) == y_test).mean())
    subset = np.random.default_rng([config["seed"], 17]).choice(
        len(x), min(REFERENCE_COUNT, len(x)), replace=False)
    return {"params": model.state_dict(),
            "info": {"dataset": name, "in_channels": x.shape[1], "classes": classes,
                     "config": config,
                     "test_accuracy": accuracy, "feature_scale": scale, "train_steps": steps,
                     "train_seconds": round(time.perf_counter() - started, 1)},
            "mean": train_features.mean(axis=0), "cov": np.cov(train_features, rowvar=False),
            "subset": train_features[np.sort(subset)]}


# ---------------------------------------------------------------------------------------
# the metrics, on features


def fid(features, mean, cov):
    """Frechet distance between the Gaussian of `features` (N, d) and N(mean, cov)."""
    from scipy import linalg
    mu = features.mean(axis=0)
    sigma = np.cov(features, rowvar=False)
    with warnings.catch_warnings():  # a singular product (dead features) is expected
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        root = linalg.sqrtm(sigma @ cov)
        if not np.isfinite(root).all():  # as pytorch-fid: move both off singularity
            offset = np.eye(len(cov)) * 1e-6
            root = linalg.sqrtm((sigma + offset) @ (cov + offset))
    if np.iscomplexobj(root):
        root = root.real  # rounding leaves tiny imaginary parts on a PSD product
    diff = mu - mean
    return float(diff @ diff + np.trace(sigma) + np.trace(cov) - 2 * np.trace(root))


def polynomial_mmd2(a, b):
    """The unbiased MMD^2 of samples a (m, d) and b (n, d) with k = (a.b / d + 1)^3."""
    d = a.shape[1]
    k_aa, k_bb = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3
    k_ab = (a @ b.T / d + 1) ** 3
    m, n = len(a), len(b)
    return float((k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
                 + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1)) - 2 * k_ab.mean())


def kid(features, reference_features, seed=0, subsets=KID_SUBSETS, subset=KID_SUBSET):
    """1000 x the mean unbiased polynomial MMD^2 over `subsets` draws of min(subset, N, M)
    examples of each side (from a generator seeded with `seed`)."""
    features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    reference_features = np.asarray(reference_features, dtype=np.float64) \
        .reshape(len(reference_features), -1)
    m = min(subset, len(features), len(reference_features))
    if m < 2:
        raise ValueError(f"kid: needs at least 2 examples on each side, got "
                         f"{len(features)} and {len(reference_features)}")
    rng = np.random.default_rng(np.atleast_1d(seed).tolist() + [18])
    values = [polynomial_mmd2(features[rng.choice(len(features), m, replace=False)],
                              reference_features[rng.choice(len(reference_features), m,
                                                            replace=False)])
              for _ in range(subsets)]
    return 1000.0 * float(np.mean(values))


def inception_score(probs):
    """exp(E_x KL(p(y|x) || p(y))) of softmax rows (N, classes)."""
    p_y = probs.mean(axis=0, keepdims=True)
    kl = (probs * (np.log(probs + 1e-12) - np.log(p_y + 1e-12))).sum(axis=1)
    return float(np.exp(kl.mean()))


def _squared_distances(a, b):
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0)


def precision_recall(features, reference_features, k=PR_NEIGHBOURS):
    """Kynkaanniemi et al. (2019): each set's manifold is the union of balls around its
    points reaching their k-th nearest neighbour (themselves excluded); precision is the
    share of samples inside the reference manifold, recall of reference points inside
    the samples' manifold."""
    def radii(points):
        d = _squared_distances(points, points)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself

    def inside(points, centres, r):
        return float((_squared_distances(points, centres) <= r[None, :]).any(axis=1).mean())

    return (inside(features, reference_features, radii(reference_features)),
            inside(reference_features, features, radii(features)))


def image_quality(samples, spec_or_name, config=None, seed=0):
    """Every image metric of samples (uint8 (N, C, H, W) at the data's levels) against the
    dataset's train-split reference, and the classifier's test accuracy."""
    name = getattr(spec_or_name, "name", spec_or_name)
    ref = reference(name, config)
    samples = np.asarray(samples)
    if samples.ndim != 4:
        raise ValueError(f"image_quality: expected images (N, C, H, W), got {samples.shape}")
    feats, probs = ref.features(samples)
    precision, recall = precision_recall(feats, ref.subset)
    return {"fid_local": fid(feats, ref.mean, ref.cov),
            "kid_local": kid(feats, ref.subset, seed),
            "is_local": inception_score(probs), "precision": precision, "recall": recall,
            "classifier_accuracy": ref.accuracy}


def quality_metrics(model, spec, generator, n=2000):
    """image_quality of n samples of any model (model.sample, in eval mode, no graph)."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            samples = np.asarray(model.sample(n, generator))
    finally:
        model.train(was_training)
    return image_quality(samples, spec)


# ---------------------------------------------------------------------------------------
# mode collapse on 2-D toy data


def mode_coverage(samples, modes):
    """{"modes_hit": modes with at least MODE_MIN_SHARE of the samples high-quality near
    them, "high_quality": the share of samples within 3 std of a mode}; `modes` as
    data.toy_modes gives them."""
    samples = np.asarray(samples, dtype=np.float64)
    if modes["kind"] == "points":
        distance = np.sqrt(_squared_distances(samples, np.asarray(modes["centres"])))
    else:
        radius = np.linalg.norm(samples, axis=1)
        distance = np.abs(radius[:, None] - np.asarray(modes["radii"])[None, :])
    nearest = distance.argmin(axis=1)
    good = distance.min(axis=1) <= 3 * modes["std"]
    counts = np.bincount(nearest[good], minlength=distance.shape[1])
    threshold = max(1, math.ceil(MODE_MIN_SHARE * len(samples)))
    return {"modes_hit": int((counts >= threshold).sum()), "high_quality": float(good.mean())}


# ---------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minigen.quality",
                                     description="the floor (test images) and trained runs' "
                                     "sample quality on minigen's classifier features")
    parser.add_argument("data")
    parser.add_argument("runs", nargs="*", metavar="RUN", help="run folders to score")
    parser.add_argument("--n", type=int, default=2000, help="samples per run")
    args = parser.parse_args(argv)
    from . import trainer
    x_test, _ = data.load(args.data, "test")
    floor = x_test[:args.n]
    results = {"test images (floor)": {"n": len(floor), **image_quality(floor, args.data)}}
    for run_dir in args.runs:
        run = trainer.Run.from_checkpoint(os.path.join(run_dir, "checkpoint.npz"))
        if run.data_name != args.data:
            raise ValueError(f"{run_dir} was trained on {run.data_name}, not {args.data}")
        with run.evaluation_weights():
            metrics = quality_metrics(run.model, run.spec, Generator([run.seed, 3]), args.n)
        results[f"{run.entry.name} ({run_dir})"] = {"n": args.n, **metrics}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
