"""Word vectors from text (issue 17): the pieces of skip-gram with negative sampling
(word2vec: Mikolov, Sutskever, Chen, Corrado and Dean 2013, "Distributed Representations of
Words and Phrases and their Compositionality"; the model is minigen.models.word2vec), the
SVD of the positive PMI matrix (Levy, Goldberg and Dagan 2015, "Improving Distributional
Similarity with Lessons Learned from Word Embeddings"), which factorises what SGNS
factorises implicitly (Levy and Goldberg 2014), and nearest neighbours by cosine.

Words are the lower-cased runs of letters (with an inner apostrophe: "don't") of the text's
bytes read as Latin-1; the vocabulary is the `size` most frequent words seen at least
`min_count` times (ties in first-seen order).

    python -m minigen.representation.words RUN [--words time love computer ...]

prints the nearest neighbours of a few words in a trained word2vec run, and in the PPMI-SVD
vectors of the same run's training text, vocabulary, window and dimension.
"""
import argparse
import collections
import re

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from .. import functional as F
from .. import trainer
from ..ops import log_sigmoid

WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
SHOWN = ("time", "love", "computer", "money", "god", "woman", "good", "program", "war",
         "three")


def tokenize(text):
    """The words of text (bytes, a uint8 array, or str), lower-cased."""
    if isinstance(text, np.ndarray):
        text = text.tobytes()
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return WORD.findall(text.lower())


def build_vocabulary(words, size, min_count=1):
    """(vocabulary, counts): the `size` most frequent words with at least min_count
    occurrences, most frequent first, and their counts."""
    common = [(w, c) for w, c in collections.Counter(words).most_common(size)
              if c >= min_count]
    if not common:
        raise ValueError(f"min_count={min_count}: no word occurs that often in the text")
    vocabulary, counts = zip(*common)
    return list(vocabulary), np.array(counts, dtype=np.int64)


def word_ids(words, index):
    """The ids (int64) of the words that are in the vocabulary (index: word -> id); the
    others are left out, as word2vec leaves them."""
    return np.array([index[w] for w in words if w in index], dtype=np.int64)


def skipgram_pairs(ids, window, generator=None):
    """(centres, contexts): every pair of a word and a word at most b positions away in the
    sequence ids, b = window, or with a generator drawn per centre uniformly from
    1..window (word2vec's dynamic window, which weighs near words more)."""
    n = len(ids)
    reach = np.full(n, window) if generator is None else \
        generator.rng.integers(1, window + 1, n)
    centres, contexts = [], []
    for offset in range(1, window + 1):
        near = np.flatnonzero(reach[:n - offset] >= offset) if n > offset else \
            np.zeros(0, np.int64)
        centres.append(ids[near])                       # the word before looks ahead
        contexts.append(ids[near + offset])
        back = np.flatnonzero(reach[offset:] >= offset) + offset if n > offset else \
            np.zeros(0, np.int64)
        centres.append(ids[back])                       # the word after looks back
        contexts.append(ids[back - offset])
    return np.concatenate(centres), np.concatenate(contexts)


def noise_distribution(counts, power=0.75):
    """word2vec's noise distribution of negatives: unigram counts to the power 3/4,
    normalised."""
    weights = np.asarray(counts, dtype=np.float64) ** power
    return weights / weights.sum()


def sgns_loss(input_vectors, output_vectors, centres, contexts, negatives):
    """Skip-gram with negative sampling (Mikolov et al. 2013, eq. 4), as a loss: for each
    pair (c, o) with K negatives n_1..n_K drawn from the noise distribution,

        l = -log sigma(u_o . v_c) - sum_k log sigma(-u_{n_k} . v_c)

    mean over the pairs; v are input vectors (V, D), u output vectors (V, D), centres and
    contexts (P,) ids, negatives (P, K) ids."""
    v = F.embedding(centres, input_vectors)                        # (P, D)
    u = F.embedding(contexts, output_vectors)                      # (P, D)
    noise = F.embedding(negatives, output_vectors)                 # (P, K, D)
    positive = log_sigmoid((u * v).sum(axis=1))
    negative = log_sigmoid(-(noise * v[:, None, :]).sum(axis=2)).sum(axis=1)
    return -(positive + negative).mean()


def cooccurrence(ids, vocabulary_size, window):
    """The symmetric (V, V) sparse matrix of counts #(w, c): how often c is at most `window`
    positions from w in the sequence ids."""
    centres, contexts = skipgram_pairs(np.asarray(ids), window)
    ones = np.ones(len(centres))
    return scipy.sparse.coo_matrix((ones, (centres, contexts)),
                                   shape=(vocabulary_size, vocabulary_size)).tocsr()


def ppmi(counts, alpha=0.75):
    """The positive PMI matrix of co-occurrence counts (sparse): PPMI(w, c) =
    max(log P(w, c) / (P(w) P_alpha(c)), 0), with P_alpha(c) = #(c)^alpha / sum #(c')^alpha,
    the context distribution smoothed (Levy et al. 2015, sec. 3.1; alpha = 1: plain PMI)."""
    counts = scipy.sparse.csr_matrix(counts, dtype=np.float64)
    total = counts.sum()
    rows = np.asarray(counts.sum(axis=1)).ravel() / total
    columns = np.asarray(counts.sum(axis=0)).ravel() ** alpha
    columns = columns / columns.sum()
    coo = counts.tocoo()
    pmi = np.log(coo.data / total / (rows[coo.row] * columns[coo.col]))
    keep = pmi > 0
    return scipy.sparse.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])),
                                   shape=counts.shape)


def ppmi_svd(ids, vocabulary_size, window, dim, alpha=0.75):
    """Word vectors (V, dim): the truncated SVD of the PPMI matrix of ids' co-occurrences
    within `window`, U_d sqrt(S_d) (Levy et al. 2015's symmetric weighting, p = 0.5)."""
    matrix = ppmi(cooccurrence(ids, vocabulary_size, window), alpha)
    if dim >= min(matrix.shape) - 1:  # svds needs dim < V; a small one is done densely
        u, s, _ = np.linalg.svd(matrix.toarray())
        u, s = u[:, :dim], s[:dim]
    else:
        u, s, _ = scipy.sparse.linalg.svds(matrix, k=dim, random_state=0)
        order = np.argsort(-s)
        u, s = u[:, order], s[order]
    return u * np.sqrt(s)


def nearest(vectors, vocabulary, word, k=5):
    """The k words whose vectors have the largest cosine with `word`'s, with the cosines,
    the word itself left out."""
    index = {w: i for i, w in enumerate(vocabulary)}
    if word not in index:
        raise ValueError(f"{word!r} is not in the vocabulary")
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    cosines = unit @ unit[index[word]]
    cosines[index[word]] = -np.inf
    best = np.argsort(-cosines)[:k]
    return [(vocabulary[i], float(cosines[i])) for i in best]


def show(title, vectors, vocabulary, words, k):
    print(title)
    for word in words:
        if word in vocabulary:
            print(f"  {word}: " + ", ".join(f"{w} {c:.2f}"
                                            for w, c in nearest(vectors, vocabulary, word, k)))


def main(argv=None):
    parser = argparse.ArgumentParser(description="nearest neighbours (cosine) of a few "
                                     "words in a word2vec run and in PPMI-SVD vectors")
    parser.add_argument("run", help="a word2vec run folder or its checkpoint.npz")
    parser.add_argument("--words", nargs="+", default=list(SHOWN))
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args(argv)
    path = args.run if args.run.endswith(".npz") else f"{args.run}/checkpoint.npz"
    model = trainer.Run.from_checkpoint(path).model
    vocabulary = model.vocabulary
    show(f"word2vec ({model.registry_name}, {len(vocabulary)} words, dim {model.dim}, "
         f"window {model.window}):", model.input_vectors.numpy()[:len(vocabulary)],
         vocabulary, args.words, args.k)
    vectors = ppmi_svd(model.train_ids, len(vocabulary), model.window, model.dim)
    show("PPMI-SVD (the same text, vocabulary, window and dimension; alpha 0.75):",
         vectors, vocabulary, args.words, args.k)


if __name__ == "__main__":
    main()
