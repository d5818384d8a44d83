"""Word vectors (issue 17): words and the vocabulary, skip-gram pairs, the SGNS loss by hand
on a tiny case, the PPMI matrix against its definition and its SVD's neighbours on a tiny
corpus, cosine neighbours; and word2vec trains, evaluates and shows its neighbours from the
command line, while `minigen probe` refuses the unlabelled text with one line."""
import json
import math

import numpy as np
import pytest

import minigen as mg
from minigen import cli
from minigen.random import Generator
from minigen.representation import words


def test_words_and_the_vocabulary():
    text = b"The cat's hat -- the CAT, the hat.\nDon't!"
    assert words.tokenize(text) == ["the", "cat's", "hat", "the", "cat", "the", "hat",
                                    "don't"]
    assert words.tokenize(np.frombuffer(text, np.uint8)) == words.tokenize(text)
    vocabulary, counts = words.build_vocabulary(words.tokenize(text), 3, min_count=2)
    assert vocabulary == ["the", "hat"] and list(counts) == [3, 2]
    with pytest.raises(ValueError, match="min_count=5: no word occurs that often"):
        words.build_vocabulary(["a"], 3, min_count=5)


def test_skipgram_pairs_are_every_word_within_the_window():
    ids = np.array([10, 11, 12, 13])
    centres, contexts = words.skipgram_pairs(ids, 2)
    expected = {(a, b) for i, a in enumerate(ids) for j, b in enumerate(ids)
                if i != j and abs(i - j) <= 2}
    assert sorted(zip(centres.tolist(), contexts.tolist())) == sorted(expected)
    # the dynamic window: a centre's reach is drawn from 1..window, never more
    centres, contexts = words.skipgram_pairs(np.arange(50), 3, Generator(0))
    assert 0 < np.abs(centres - contexts).max() <= 3 and len(centres) < 2 * (49 + 48 + 47)


def test_the_sgns_loss_by_hand():
    v = np.array([[1.0, 0.0], [0.5, -1.0], [0.0, 2.0]])
    u = np.array([[0.2, 0.1], [-1.0, 0.5], [0.3, -0.4]])
    centres, contexts, negatives = np.array([0, 2]), np.array([1, 0]), np.array([[2, 1],
                                                                                 [1, 1]])

    def log_sigmoid(a):
        return -math.log1p(math.exp(-a))
    by_hand = [-log_sigmoid(u[o] @ v[c]) - sum(log_sigmoid(-(u[k] @ v[c])) for k in ks)
               for c, o, ks in zip(centres, contexts, negatives)]
    loss = words.sgns_loss(mg.tensor(v, dtype=np.float64), mg.tensor(u, dtype=np.float64),
                           mg.tensor(centres), mg.tensor(contexts), mg.tensor(negatives))
    assert loss.item() == pytest.approx(np.mean(by_hand), rel=1e-12)


def test_the_ppmi_matrix_is_its_definition():
    ids = np.array([0, 1, 0, 2, 1, 1])
    counts = words.cooccurrence(ids, 3, 1).toarray()
    np.testing.assert_array_equal(counts, counts.T)
    assert counts[0, 1] == 2 and counts[1, 1] == 2 and counts[0, 0] == 0
    for alpha in (1.0, 0.75):
        p = counts / counts.sum()
        context = counts.sum(axis=0) ** alpha
        with np.errstate(divide="ignore"):
            pmi = np.log(p / (p.sum(axis=1, keepdims=True) * (context / context.sum())))
        np.testing.assert_allclose(words.ppmi(counts, alpha).toarray(),
                                   np.maximum(pmi, 0), rtol=1e-12)


def test_ppmi_svd_puts_words_of_the_same_contexts_together():
    # "cat" and "dog" share their contexts, as do "red" and "blue"; never each other's
    text = " ".join(["the cat sat", "the dog sat", "a red car", "a blue car"] * 20)
    vocabulary, _ = words.build_vocabulary(words.tokenize(text), 100)
    index = {w: i for i, w in enumerate(vocabulary)}
    ids = words.word_ids(words.tokenize(text), index)
    vectors = words.ppmi_svd(ids, len(vocabulary), 1, 4, alpha=1.0)
    assert vectors.shape == (len(vocabulary), 4)
    assert words.nearest(vectors, vocabulary, "cat", 1)[0][0] == "dog"
    assert words.nearest(vectors, vocabulary, "red", 1)[0][0] == "blue"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        words.nearest(vectors, vocabulary, "zebra")


def test_word2vec_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "word2vec", "--data", "fortunes", "--out", str(out),
                     "--quiet", "--config", "steps=2", "dim=4", "vocabulary=500",
                     "batch_size=8"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["test_sgns_loss"]) and metrics["pictures"] == []
    capsys.readouterr()
    assert cli.main(["probe", str(out), "--quiet"]) == 2
    assert "no labels" in capsys.readouterr().err
    words.main([str(out), "--words", "time", "zzzz", "-k", "2"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("word2vec (word2vec, 500 words, dim 4, window 5)")
    assert printed[1].startswith("  time: ") and printed[2].startswith("PPMI-SVD")
    assert len(printed) == 4  # zzzz is not in the vocabulary: left out
