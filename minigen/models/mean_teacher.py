"""mean-teacher: Mean Teacher (Tarvainen and Valpola 2017, "Mean teachers are better role
models"), semi-supervised.

The student is supervised's classifier (the encoder and Linear(F, classes)); the teacher is
the same network whose weights are an exponential moving average of the student's, after
every optimiser step (sec. 2):

    theta'_t = a theta'_{t-1} + (1 - a) theta_t,      a = teacher_decay (0.99)

Each step takes all the labelled images (labels=N, DATA.md's rule) and a batch of
batch_size images of the whole train split (every image is also unlabelled), augmented
three times: the labelled images once for the student, the unlabelled ones once for the
student and once, differently, for the teacher. The cost is

    L = CE(student(labelled), y) + w(t) 1/(B C) sum_b |softmax(student(u_b)) - softmax(teacher(u'_b))|^2
    w(t) = consistency exp(-5 (1 - min(t, rampup) / rampup)^2)

with t the number of steps done before this one; the teacher gets no gradient. The teacher
is evaluated: `accuracy` (test_accuracy) and `cross_entropy` are its, student_accuracy and
student_cross_entropy the student's; `features(x)` is the teacher's encoder. The teacher's
weights are parameters of the model (saved and resumed with the checkpoint, not trained by
the optimiser); the step count t is saved with it. The issue's checked config is the
default on digits: labels=50, 128 unlabelled images a step, decay 0.99, weight ramped up to
10 over 1000 steps, Adam 1e-3, 3000 steps.
"""
from .. import backend
from .. import functional as F
from ..autograd import no_grad, tensor
from ..model import Player, Update
from ..representation.encoder import Classifier
from ..representation.losses import sigmoid_rampup, softmax_mse
from ..representation.model import (AUGMENT, AUGMENT_RANGES, IMAGES, LABELS_RANGE,
                                    classifier_metrics)
from . import register
from .supervised import Supervised


@register("mean-teacher", "Mean Teacher: a student on labels=N and consistency with an EMA "
          "teacher on unlabelled images (the teacher is evaluated)", data=IMAGES, labels=50,
          width=32, teacher_decay=0.99, consistency=10.0, rampup=1000, **AUGMENT,
          steps=3000, batch_size=128, lr=1e-3,
          ranges={**AUGMENT_RANGES, "labels": LABELS_RANGE, "teacher_decay": "[0, 1]",
                  "consistency": "[0, inf)", "rampup": "[0, inf)"})
class MeanTeacher(Supervised):
    def __init__(self, spec, generator, teacher_decay=0.99, consistency=10.0, rampup=1000,
                 width=32, **config):
        super().__init__(spec, generator, width=width, **config)
        if not 0 <= teacher_decay <= 1:
            raise ValueError(f"teacher_decay={teacher_decay}: an average's decay is in [0, 1]")
        self.decay, self.consistency, self.rampup = (float(teacher_decay), float(consistency),
                                                     int(rampup))
        self.teacher = Classifier(spec.shape[0], width, spec.num_classes, generator)
        for theirs, ours in zip(self.teacher.parameters(), self.classifier.parameters()):
            theirs.data[...] = ours.data
            theirs.requires_grad = False
        self.step_count = 0

    def players(self):
        return {"model": Player(list(self.classifier.parameters()))}

    def views(self, labelled, unlabelled, generator):
        """The three augmentations of a step (arrays), in the order drawn: the labelled
        images for the student, the unlabelled for the student, for the teacher."""
        first = self.augment(labelled, generator)
        second = self.augment(unlabelled, generator)
        return first, second, self.augment(unlabelled, generator)

    def updates(self, batches, generator):
        y, labels = self.labelled_examples()
        u = self.scale(batches.next().x)
        labelled, student_view, teacher_view = self.views(y, u, generator)
        with no_grad():
            teacher = self.teacher(tensor(teacher_view)).softmax(axis=1)
        logits = self.classifier(tensor(backend.xp_of(y).concatenate([labelled,
                                                                      student_view])))
        classification = F.cross_entropy(logits[:len(y)], labels)
        consistency = softmax_mse(logits[len(y):], teacher)
        weight = sigmoid_rampup(self.step_count, self.consistency, self.rampup)
        yield Update("model", classification + weight * consistency,
                     {"classification": classification.item(),
                      "consistency": consistency.item(), "consistency_weight": weight})

    def after_update(self, player):
        """theta' <- a theta' + (1 - a) theta, after the student's step."""
        for theirs, ours in zip(self.teacher.parameters(), self.classifier.parameters()):
            theirs.data += (1 - self.decay) * (ours.data - theirs.data)
        self.step_count += 1

    def evaluated(self):
        return self.teacher

    def evaluate(self, batches, final=True):
        batches = list(batches)
        return {**classifier_metrics(self.teacher, batches, self.scale),
                **classifier_metrics(self.classifier, batches, self.scale, "student_")}

    def extra_state(self):
        return {"step_count": self.step_count}

    def load_extra_state(self, state):
        self.step_count = int(state["step_count"])
