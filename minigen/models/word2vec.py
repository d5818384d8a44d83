"""word2vec: skip-gram with negative sampling (Mikolov, Sutskever, Chen, Corrado and Dean
2013, "Distributed Representations of Words and Phrases and their Compositionality"), on
text (fortunes).

The vocabulary is the `vocabulary` most frequent words of the training split seen at least
`min_count` times (minigen.representation.words: lower-cased runs of letters). A step reads
batch_size windows of `context` characters of the text (the trainer's text batches), splits
each into words (the first and last, possibly cut, left out) and drops the words outside the
vocabulary; a frequent word w is then discarded with probability 1 - sqrt(t / f(w))
(sec. 2.3, t = `subsample`, f the word's share of the training words; 0: keep all). Each
remaining word c and each word o at most b positions from it, b drawn from 1..`window` per
word (the dynamic window), is a pair, with `negatives` noise words n_k drawn from the
unigram distribution to the power 3/4 (eq. 4):

    l(c, o) = -log sigma(u_o . v_c) - sum_k log sigma(-u_{n_k} . v_c)

v the input vectors (the word vectors kept; initialised uniform in +-0.5/dim as word2vec
does), u the output vectors (initialised 0). The optimiser is plain SGD, as word2vec's:
`lr` is the step per pair, so the update is on the sum of l over the step's pairs (the mean
is logged as sgns_loss), its rate decayed to 0 over the run (the trainer's cosine
schedule; word2vec's own decay is linear): without a decay the held-out loss rose again
(3.58 after 300 steps, 4.31 after 1000), with it 2.66 after 1000. Adam was tried and left: with 3e-3 it moved every vector along
one common direction (the words' frequencies), all neighbours at cosine 1.00 after 300
steps.

Metric: `sgns_loss`, the same loss on the test split's words (every pair within `window`,
no subsampling, negatives from a fixed seed). The text has no labels, so there is no
linear probe: `python -m minigen.representation.words RUN` prints the nearest neighbours of
a few words, here and in the PPMI-SVD vectors of the same text.
"""
import numpy as np

from .. import nn
from ..autograd import no_grad, tensor
from ..model import Model, Player, Update
from ..random import Generator
from ..representation.words import (build_vocabulary, noise_distribution, sgns_loss,
                                    skipgram_pairs, tokenize, word_ids)
from . import register

EVALUATION_SEED = 0
EVALUATION_PAIRS = 20000  # pairs scored at once in evaluation, to bound the memory


@register("word2vec", "skip-gram with negative sampling on the words of a text; nearest "
          "neighbours by python -m minigen.representation.words RUN", data=("fortunes",),
          dim=100, vocabulary=10000, min_count=5, window=5, negatives=5, subsample=1e-3,
          context=256, steps=3000, batch_size=64, lr=0.025, cosine=True,
          ranges={"dim": "[1, inf)", "vocabulary": "[2, inf)", "min_count": "[1, inf)",
                  "window": "[1, inf)", "negatives": "[1, inf)", "subsample": "[0, inf)",
                  "context": "[2, inf)"})
class Word2Vec(Model):
    validation_metric = "sgns_loss"
    draws_samples = False

    def __init__(self, spec, generator, dim=100, vocabulary=10000, min_count=5, window=5,
                 negatives=5, subsample=1e-3, context=256):
        super().__init__(spec)
        if spec.shape != ():
            raise ValueError(f"word2vec learns from text (a sequence of characters), not "
                             f"data of shape {spec.shape}")
        if int(vocabulary) > 10 ** 6 or int(dim) > 10 ** 4:
            raise ValueError(f"vocabulary={vocabulary}, dim={dim}: at most 10^6 words of "
                             f"10^4 numbers")
        self.dim, self.size, self.min_count = int(dim), int(vocabulary), int(min_count)
        self.window, self.negatives = int(window), int(negatives)
        self.subsample, self.text_window = float(subsample), int(context)
        bound = 0.5 / self.dim
        self.input_vectors = nn.Parameter(generator.rng.uniform(
            -bound, bound, (self.size, self.dim)).astype(np.float32))
        self.output_vectors = nn.Parameter(np.zeros((self.size, self.dim), np.float32))
        self.vocabulary, self.index, self.noise, self.keep = [], {}, None, None
        self.train_ids = None

    def set_training_split(self, x, y):
        words = tokenize(x)
        self.vocabulary, counts = build_vocabulary(words, self.size, self.min_count)
        self.index = {w: i for i, w in enumerate(self.vocabulary)}
        self.noise = noise_distribution(counts)
        self.train_ids = word_ids(words, self.index)
        share = counts / counts.sum()
        # word2vec's subsampling: keep a word with probability sqrt(t / f), at most 1
        self.keep = np.ones(len(counts)) if not self.subsample else \
            np.minimum(np.sqrt(self.subsample / share), 1.0)

    def window_ids(self, windows, generator=None):
        """The vocabulary ids of each window's whole words (the cut ends left out), each a
        sequence of its own; with a generator, frequent words subsampled."""
        out = []
        for text in windows:
            ids = word_ids(tokenize(text)[1:-1], self.index)
            if generator is not None:
                ids = ids[generator.rng.random(len(ids)) < self.keep[ids]]
            out.append(ids)
        return out

    def pairs(self, sequences, generator, dynamic):
        """(centres, contexts, negatives) of every sequence's skip-gram pairs."""
        found = [skipgram_pairs(ids, self.window, generator if dynamic else None)
                 for ids in sequences]
        centres = np.concatenate([c for c, _ in found] or [np.zeros(0, np.int64)])
        contexts = np.concatenate([o for _, o in found] or [np.zeros(0, np.int64)])
        negatives = generator.rng.choice(len(self.noise), (len(centres), self.negatives),
                                         p=self.noise)
        return centres, contexts, negatives

    def loss_of(self, centres, contexts, negatives):
        ids = [tensor(a, device=self.device) for a in (centres, contexts, negatives)]
        return sgns_loss(self.input_vectors, self.output_vectors, *ids)

    def updates(self, batches, generator):
        windows = batches.next().x.numpy()
        centres, contexts, negatives = self.pairs(self.window_ids(windows, generator),
                                                  generator, dynamic=True)
        if not len(centres):
            raise ValueError(f"word2vec: a batch of {len(windows)} windows of "
                             f"{self.text_window} characters held no pair of known words; "
                             f"use longer windows (context) or more of them")
        loss = self.loss_of(centres, contexts, negatives)
        # word2vec's SGD takes a step of lr per pair: the sum over the pairs
        yield Update("model", loss * len(centres), {"sgns_loss": loss.item(),
                                                    "pairs": len(centres)})

    def players(self):
        return {"model": Player(list(self.parameters()), optimizer="sgd")}

    def evaluate(self, batches, final=True):
        generator = Generator(EVALUATION_SEED)
        total, count = 0.0, 0
        with no_grad():
            for batch in batches:
                ids = word_ids(tokenize(batch.x.numpy()), self.index)
                centres, contexts, negatives = self.pairs([ids], generator, dynamic=False)
                for start in range(0, len(centres), EVALUATION_PAIRS):
                    part = slice(start, start + EVALUATION_PAIRS)
                    loss = self.loss_of(centres[part], contexts[part], negatives[part])
                    total += float(loss.item()) * len(centres[part])
                    count += len(centres[part])
        return {"sgns_loss": total / max(count, 1)}

    def sample(self, n, generator, labels=None):
        raise ValueError("word2vec learns word vectors, not the text's distribution: it has "
                         "no samples to draw")
