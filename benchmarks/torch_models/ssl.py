"""The representation-learning models of issue 17's checked configs in PyTorch, the
references for minigen's `simclr`, `supervised` and `mean-teacher`
(minigen/representation/, minigen/models/simclr.py, supervised.py, mean_teacher.py):

    encoder     conv C -> w 3x3 p1, ReLU, conv w -> 2w 3x3 p1, ReLU, max-pool 2,
                conv 2w -> 4w 3x3 p1, ReLU, global average pool        (4w = 128 features)
    classifier  encoder, Linear 4w -> classes
    simclr      projection Linear 4w -> 4w, ReLU, Linear 4w -> 64; NT-Xent at temperature t
                over the 2N views, rows i and i + N the two views of one image
    supervised  cross-entropy of the classifier on the augmented labelled images
    mean-teacher  the student's cross-entropy on the labelled images plus w(t) times the
                mean over batch and classes of (softmax(student(u)) - softmax(teacher(u')))^2,
                the teacher the EMA of the student (theta' <- a theta' + (1 - a) theta after
                each optimiser step), w(t) = c exp(-5 (1 - min(t, T) / T)^2)

Parameter names are minigen's (encoder.conv1, projection.hidden, classifier.head,
teacher.encoder.conv3, ...), so minigen's weights copy in by name. The models take the
augmented views as tensors: the augmentations are data, drawn by minigen's own functions
so that both sides train on the same views.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


class Encoder(nn.Module):
    def __init__(self, in_channels, width):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.conv3 = nn.Conv2d(2 * width, 4 * width, 3, padding=1)

    def forward(self, x):
        h = F.max_pool2d(torch.relu(self.conv2(torch.relu(self.conv1(x)))), 2)
        return torch.relu(self.conv3(h)).mean(dim=(2, 3))


class Classifier(nn.Module):
    def __init__(self, in_channels, width, classes):
        super().__init__()
        self.encoder = Encoder(in_channels, width)
        self.head = nn.Linear(4 * width, classes)

    def forward(self, x):
        return self.head(self.encoder(x))


class ProjectionHead(nn.Module):
    def __init__(self, features, hidden, out):
        super().__init__()
        self.hidden = nn.Linear(features, hidden)
        self.out = nn.Linear(hidden, out)

    def forward(self, h):
        return self.out(torch.relu(self.hidden(h)))


def nt_xent(z, temperature):
    """SimCLR eq. 1 over 2N projections, the self-similarity left out of each denominator."""
    n = len(z) // 2
    unit = F.normalize(z, dim=1)
    logits = unit @ unit.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, positive)


class SimCLR(nn.Module):
    def __init__(self, in_channels, width=32, projection=64, temperature=0.5):
        super().__init__()
        self.temperature = temperature
        self.encoder = Encoder(in_channels, width)
        self.projection = ProjectionHead(4 * width, 4 * width, projection)

    def loss(self, first, second):
        return nt_xent(self.projection(self.encoder(torch.cat([first, second]))),
                       self.temperature)

    def features(self, x):
        return self.encoder(x)


class Supervised(nn.Module):
    def __init__(self, in_channels, width=32, classes=10):
        super().__init__()
        self.classifier = Classifier(in_channels, width, classes)

    def loss(self, labelled, labels):
        return F.cross_entropy(self.classifier(labelled), labels)

    def evaluated(self):
        return self.classifier


def sigmoid_rampup(step, maximum, length):
    if length <= 0:
        return float(maximum)
    return float(maximum * math.exp(-5.0 * (1.0 - min(step, length) / length) ** 2))


class MeanTeacher(Supervised):
    def __init__(self, in_channels, width=32, classes=10, decay=0.99, consistency=10.0,
                 rampup=1000):
        super().__init__(in_channels, width, classes)
        self.decay, self.consistency, self.rampup = decay, consistency, rampup
        self.teacher = Classifier(in_channels, width, classes)
        self.teacher.load_state_dict(self.classifier.state_dict())
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def loss(self, labelled, labels, student_view, teacher_view, step):
        """The loss of step `step` (the number of steps done before it)."""
        with torch.no_grad():
            teacher = torch.softmax(self.teacher(teacher_view), dim=1)
        logits = self.classifier(torch.cat([labelled, student_view]))
        classification = F.cross_entropy(logits[:len(labelled)], labels)
        consistency = ((torch.softmax(logits[len(labelled):], dim=1) - teacher) ** 2).mean()
        return classification + sigmoid_rampup(step, self.consistency, self.rampup) \
            * consistency

    @torch.no_grad()
    def update_teacher(self):
        for theirs, ours in zip(self.teacher.parameters(), self.classifier.parameters()):
            theirs.lerp_(ours, 1 - self.decay)

    def evaluated(self):
        return self.teacher
