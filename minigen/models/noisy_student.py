"""noisy-student: Noisy Student training (Xie et al. 2020, "Self-training with Noisy
Student improves ImageNet classification", Algorithm 1), semi-supervised.

A teacher labels the unlabelled images, an equal-sized student learns from those labels and
the true ones while noised, and the student becomes the next teacher. Within one run of the
trainer the steps fall into rounds of round_steps each:

    round 0:  the first teacher: L = CE(f~(labelled), y)
    round r:  the teacher = the classifier as round r - 1 left it, frozen;
              L = CE(f~(labelled), y) + weight 1/B sum_b H(q_b, f~(u_b)),
              q_b = softmax(teacher(u_b))   (soft pseudo-labels; hard_labels=true: one-hot)

f~ is the noised student: the shared augmentation on its inputs and dropout (p = dropout)
on the encoder's features before the linear layer; the teacher sees the unlabelled images
as they are, without dropout (the paper: the teacher is not noised, so its labels are as
good as it can make them). With the default 3000 steps and round_steps 750 the run is the
first teacher and three students. The paper trains each student from scratch; here the
trainer's one optimiser carries across rounds, so each student starts from its teacher's
weights (a fresh start under Adam's running moments of another network would not be one).
The teacher's weights are parameters of the model (saved and resumed, not trained); the
step count is saved with them. The classifier (the student) is evaluated.
"""
from .. import backend
from .. import functional as F
from ..autograd import no_grad, tensor
from ..model import Player, Update
from ..representation.encoder import Classifier
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES, LABELS_RANGE
from ..representation.semi import soft_cross_entropy
from . import register
from .semi_base import SemiSupervised


@register("noisy-student", "Noisy Student: rounds of a frozen teacher's pseudo-labels for a "
          "noised (augmentation, dropout) student, who becomes the next teacher",
          data=IMAGES, labels=50, width=32, round_steps=750, dropout=0.5, weight=1.0,
          hard_labels=False, **AUGMENT, steps=3000, batch_size=128, lr=1e-3,
          ranges={**AUGMENT_RANGES, "labels": LABELS_RANGE, "round_steps": "[1, inf)",
                  "dropout": "[0, 1)", "weight": "[0, inf)"})
class NoisyStudent(SemiSupervised):
    def __init__(self, spec, generator, round_steps=750, dropout=0.5, weight=1.0,
                 hard_labels=False, width=32, **config):
        super().__init__(spec, generator, width=width, **config)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout={dropout}: a dropout probability is in [0, 1)")
        self.round_steps, self.dropout = int(round_steps), float(dropout)
        self.weight, self.hard_labels = float(weight), bool(hard_labels)
        self.teacher = Classifier(spec.shape[0], width, spec.num_classes, generator)
        for p in self.teacher.parameters():
            p.requires_grad = False

    def players(self):
        return {"model": Player(list(self.classifier.parameters()))}

    @property
    def round(self):
        """The round the next step belongs to (0: the first teacher's)."""
        return self.step_count // self.round_steps

    def noised(self, x, generator):
        """The student's logits with its noise: augmented inputs (an array), dropout on the
        features."""
        features = self.classifier.encoder(tensor(self.augment(x, generator)))
        return self.classifier.head(F.dropout(features, self.dropout, generator=generator))

    def pseudo_labels(self, u):
        """The teacher's labels of the unlabelled images (an array): its class
        probabilities, or their one-hot argmax with hard_labels."""
        with no_grad():
            p = self.teacher(tensor(u)).softmax(axis=1).data
        if self.hard_labels:
            return F.one_hot(p.argmax(axis=1), self.spec.num_classes).data
        return p

    def updates(self, batches, generator):
        y, labels = self.labelled_examples()
        if self.round == 0:
            classification = F.cross_entropy(self.noised(y, generator), labels)
            yield Update("model", classification, {"classification": classification.item(),
                                                   "round": 0})
            return
        u = self.unlabelled(batches)
        targets = self.pseudo_labels(u)
        logits = self.noised(backend.xp_of(y).concatenate([y, u]), generator)
        classification = F.cross_entropy(logits[:len(y)], labels)
        pseudo = soft_cross_entropy(logits[len(y):], targets)
        yield Update("model", classification + self.weight * pseudo,
                     {"classification": classification.item(), "pseudo_label": pseudo.item(),
                      "round": self.round})

    def after_update(self, player):
        """The student becomes the teacher at the end of each round."""
        super().after_update(player)
        if self.step_count % self.round_steps == 0:
            for theirs, ours in zip(self.teacher.parameters(), self.classifier.parameters()):
                theirs.data[...] = ours.data
