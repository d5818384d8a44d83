"""deepcluster: DeepCluster (Caron, Bojanowski, Joulin and Douze 2018, "Deep Clustering for
Unsupervised Learning of Visual Features").

Alternates two steps (sec. 3.2):
- at the start of every epoch (once the steps since the last one have seen as many images as
  the training split holds), the encoder's features of every training image, standardised
  and L2-normalised (the paper whitens them with PCA first), are clustered by k-means into
  `clusters` groups (scikit-learn's KMeans, one initialisation, its seed drawn from the
  run's generator); each image's cluster is its pseudo-label. The clusters' numbering
  means nothing from one clustering to the next, so the paper draws the classifier's head
  afresh; here the new clusters are numbered instead to agree best with the last
  clustering's labels (the assignment that maximises the images whose label stays, by
  scipy's linear_sum_assignment) and the head is kept. With the paper's reset, on digits
  (an epoch is 22 steps) the head never learned: the training loss stayed at 3.8 against
  log 50 = 3.9, the pseudo-labels were noise to the encoder, and the probe fell from
  0.978 untrained to 0.789 after 1000 steps (the optimiser's moments also outlive a reset);
- between them, the encoder f (minigen.representation.encoder) and a linear head W learn
  to predict the pseudo-labels of augmented images:

      L = -1/N sum_n log softmax(W f(aug(x_n)))_{c(x_n)}

An image's pseudo-label is looked up by its pixels (identical images have identical
features, hence one cluster). The pseudo-labels, the centroids and the count of images seen
are model state in the checkpoint. The paper's sampling of images uniformly over clusters
(against empty and huge clusters) is left out.

Metrics: `pretext_loss` (the head's cross-entropy on the test images against their nearest
centroid), `clusters_used` (the share of clusters that hold a training image, logged at
each clustering), and at the end `linear_probe_acc` on f's features.
"""
import numpy as np
from scipy.optimize import linear_sum_assignment

from .. import eval as evaluation
from .. import functional as F
from .. import nn
from ..autograd import tensor
from ..model import Update
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES
from ..representation.selfsupervised import SelfSupervisedModel
from . import register


def normalised(features, mean, std):
    """Features standardised with the training split's mean and spread, then L2-normalised:
    what k-means clusters."""
    z = (features - mean) / std
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def matched_numbering(old, new, clusters):
    """numbering[k]: the label that new cluster k takes so that as many images as can keep
    their old label (a maximum-weight matching of the clusters' overlaps)."""
    overlap = np.zeros((clusters, clusters), np.int64)
    np.add.at(overlap, (new, old), 1)
    rows, columns = linear_sum_assignment(overlap, maximize=True)
    numbering = np.empty(clusters, np.int64)
    numbering[rows] = columns
    return numbering


@register("deepcluster", "DeepCluster: k-means on the encoder's features each epoch, "
          "predict the clusters as pseudo-labels; features = the encoder's", data=IMAGES,
          width=32, clusters=50, **AUGMENT, steps=2000, batch_size=64, lr=1e-3,
          ranges={**AUGMENT_RANGES, "clusters": "[2, inf)"})
class DeepCluster(SelfSupervisedModel):
    def __init__(self, spec, generator, width=32, clusters=50, **augment):
        super().__init__(spec, generator, width, **augment)
        self.clusters = int(clusters)
        self.head = nn.Linear(self.encoder.features, self.clusters, generator=generator)
        self.pseudo_labels = self.centroids = self.mean = self.std = None
        self.seen = 0
        self.positions = {}

    def set_training_split(self, x, y):
        if len(x) < self.clusters:
            raise ValueError(f"clusters={self.clusters}: k-means needs at least as many "
                             f"images as clusters; the training split holds {len(x)}")
        super().set_training_split(x, y)
        self.positions = {image.tobytes(): i for i, image in enumerate(x)}

    def recluster(self, generator):
        """k-means on the training split's features: new pseudo-labels, numbered to agree
        with the last ones."""
        from sklearn.cluster import KMeans  # scikit-learn is slow to import
        features = evaluation.encoder_features(self, self.train_x)
        self.mean, self.std = features.mean(axis=0), features.std(axis=0) + 1e-8
        kmeans = KMeans(self.clusters, n_init=1,
                        random_state=int(generator.rng.integers(2 ** 31)))
        labels = kmeans.fit_predict(normalised(features, self.mean, self.std))
        numbering = np.arange(self.clusters) if self.pseudo_labels is None else \
            matched_numbering(self.pseudo_labels, labels, self.clusters)
        self.pseudo_labels = numbering[labels]
        self.centroids = kmeans.cluster_centers_[np.argsort(numbering)]
        self.seen = 0

    def updates(self, batches, generator):
        x = batches.next().x
        logs = {}
        if self.pseudo_labels is None or self.seen >= len(self.train_x):
            self.recluster(generator)
            logs["clusters_used"] = len(np.unique(self.pseudo_labels)) / self.clusters
        images = x.numpy()
        labels = self.pseudo_labels[[self.positions[image.tobytes()] for image in images]]
        self.seen += len(images)
        y = self.augment(self.scale(x), generator)
        logits = self.head(self.encoder(tensor(y)))
        yield Update("model", F.cross_entropy(logits, tensor(labels, device=self.device)),
                     logs)

    def pretext_loss(self, y, generator):
        features = self.encoder(tensor(y))
        if self.centroids is None:  # evaluated before the first clustering
            return tensor(np.float32(np.nan)), {}
        z = normalised(features.numpy().astype(np.float64), self.mean, self.std)
        nearest = ((z[:, None] - self.centroids[None]) ** 2).sum(axis=2).argmin(axis=1)
        return F.cross_entropy(self.head(features), tensor(nearest, device=self.device)), {}

    def extra_state(self):
        if self.pseudo_labels is None:
            return {"seen": self.seen}
        return {"seen": self.seen, "pseudo_labels": self.pseudo_labels,
                "centroids": self.centroids, "mean": self.mean, "std": self.std}

    def load_extra_state(self, state):
        self.seen = int(state["seen"])
        if "pseudo_labels" in state:
            self.pseudo_labels = np.asarray(state["pseudo_labels"])
            self.centroids = np.asarray(state["centroids"], dtype=np.float64)
            self.mean = np.asarray(state["mean"], dtype=np.float64)
            self.std = np.asarray(state["std"], dtype=np.float64)
