"""What a trained likelihood model knows about its data beyond the likelihood: Fisher-score
features and a linear probe on them.

The Fisher score of an example is the gradient of its log-likelihood with respect to the
parameters (Jaakkola and Haussler 1999, "Exploiting generative models in discriminative
classifiers"):

    U(x) = d/d theta log p_theta(x),        K(x, x') = U(x)^T I^-1 U(x')       (Fisher kernel)

with I = E[U U^T] the Fisher information. The features are U(x) itself by default; with
`fisher` (I taken diagonal and estimated from data: the empirical Fisher, the mean of U^2
per parameter) they are U(x) / sqrt(diag I), whose inner products are the kernel. On digits
the plain score probed better (MADE: 0.85 against 0.78; the normalisation lifts parameters
whose score is nearly always zero to unit scale, mostly noise). Models have 10^5 to 10^6
parameters, so the vector is compressed by a count sketch (Charikar et al. 2002: each
parameter adds +-1 times its value into one of `dims` buckets, chosen at random once), which
keeps inner products in expectation; the features are that sketch.

`linear_probe_acc` fits a logistic regression (scikit-learn) on the features of the training
split and reports its accuracy on the test split: how linearly the classes separate in what
the model learned, without the model ever seeing a label.
"""
import numpy as np
import scipy.sparse
from tqdm import tqdm

from .autograd import grad, no_grad, tensor
from .model import Model

FISHER_DIMS = 4096
FISHER_EPS = 1e-8


def _parameters(model):
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"fisher_score: {type(model).__name__} has no trainable parameters")
    return params


def _per_example_scores(model, x, labels, params, progress, desc):
    """U(x_n) for each example, flattened over all parameters in order: yields (n, U)."""
    device = params[0].device
    was_training = model.training
    model.eval()
    try:
        for n in tqdm(range(len(x)), desc=desc, unit="example", disable=not progress,
                      leave=False):
            extra = {} if labels is None else {"labels": tensor(labels[n:n + 1],
                                                                device=device)}
            log_p = -model.nll(tensor(x[n:n + 1], device=device), **extra).sum()
            scores = grad(log_p, params)
            yield n, np.concatenate([s.numpy().astype(np.float64).ravel() for s in scores])
    finally:
        model.train(was_training)


def fisher_information(model, x, labels=None, progress=False):
    """The diagonal of the empirical Fisher information, mean over x of U(x)^2, one value per
    parameter (flattened in model.parameters() order), float64."""
    params = _parameters(model)
    total = None
    for _, score in _per_example_scores(model, x, labels, params, progress, "fisher info"):
        total = score ** 2 if total is None else total + score ** 2
    return total / len(x)


def count_sketch(size, dims, seed=0):
    """A (size, dims) sparse matrix with one +-1 per row in a random column: v @ S sums each
    coordinate of v, with a random sign, into one of dims buckets; E[(u S) . (v S)] = u . v."""
    rng = np.random.default_rng(seed)
    columns = rng.integers(0, dims, size)
    signs = rng.choice(np.array([-1.0, 1.0]), size)
    return scipy.sparse.csr_matrix((signs, (np.arange(size), columns)), shape=(size, dims))


def fisher_score(model, x, labels=None, dims=FISHER_DIMS, fisher=None, seed=0,
                 progress=False):
    """Fisher-score features (N, dims) float32 of the examples x (raw data, as loaded).

    Each row is the count sketch of the score U(x), or of U(x) / sqrt(diag I + eps) given
    `fisher`, the diagonal of the Fisher information (fisher_information of the training
    data, so that train and test features share one scale). dims=None keeps every
    parameter's coordinate (no sketch). `labels` are for a conditional model p(x | y).
    """
    x = np.asarray(x)
    if len(x) == 0:
        raise ValueError("fisher_score: x holds no examples")
    params = _parameters(model)
    size = sum(p.size for p in params)
    scale = 1.0
    if fisher is not None:
        fisher = np.asarray(fisher, dtype=np.float64)
        if fisher.shape != (size,):
            raise ValueError(f"fisher_score: fisher has shape {fisher.shape}, but the model "
                             f"has {size} parameters")
        scale = 1.0 / np.sqrt(fisher + FISHER_EPS)
    sketch = None if dims is None else count_sketch(size, int(dims), seed)
    out = np.empty((len(x), size if sketch is None else int(dims)), dtype=np.float32)
    for n, score in _per_example_scores(model, x, labels, params, progress, "fisher score"):
        normalised = score * scale
        out[n] = normalised if sketch is None else sketch.T @ normalised
    return out


def encoder_features(model, x, batch_size=500):
    """The features (N, F) float64 of a model with an encoder (model.features), in eval
    mode and in batches."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            return np.concatenate([
                model.features(tensor(x[i:i + batch_size], device=model.device)).numpy()
                .reshape(len(x[i:i + batch_size]), -1).astype(np.float64)
                for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def linear_probe(features_train, y_train, features_test, y_test, seed=0):
    """Test accuracy of a logistic regression fitted on the training features (standardised
    with the training split's mean and spread): scikit-learn's LogisticRegression with
    C = 1.0 (the inverse strength of its L2 penalty), lbfgs, max_iter 2000."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    probe = make_pipeline(StandardScaler(),
                          LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
    probe.fit(features_train, y_train)
    return float(probe.score(features_test, y_test))


def linear_probe_acc(model, x_train, y_train, x_test, y_test, dims=FISHER_DIMS, seed=0,
                     fisher_kernel=False, progress=False):
    """`linear_probe_acc`: a logistic regression on the model's encoder features (a model
    with `features`) or else on Fisher-score features, fitted on the training split and
    scored on the test split; with fisher_kernel, the scores are
    normalised by the Fisher information of the training split. A conditional model is
    refused: its scores would carry the label."""
    if model.num_classes:
        raise ValueError("linear_probe_acc: the model is conditional on the label, so its "
                         "Fisher scores would carry the label; probe an unconditional model")
    if y_train is None or y_test is None:
        raise ValueError("linear_probe_acc: the data has no labels to probe for")
    if model.features is not None:
        return linear_probe(encoder_features(model, x_train), y_train,
                            encoder_features(model, x_test), y_test, seed)
    if type(model).nll is Model.nll:
        raise ValueError(f"linear_probe_acc: {type(model).__name__} has neither encoder "
                         f"features nor an exact likelihood whose Fisher scores could be "
                         f"probed")
    fisher = fisher_information(model, x_train, progress=progress) if fisher_kernel else None
    train = fisher_score(model, x_train, dims=dims, fisher=fisher, seed=seed,
                         progress=progress)
    test = fisher_score(model, x_test, dims=dims, fisher=fisher, seed=seed, progress=progress)
    return linear_probe(train, y_train, test, y_test, seed)
