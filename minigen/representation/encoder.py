"""The encoder every representation-learning model shares (issue 17), and the classifier
built on it.

    conv 1->w 3x3 pad 1, ReLU, conv w->2w 3x3 pad 1, ReLU, max-pool 2,
    conv 2w->4w 3x3 pad 1, ReLU, global average pool            -> 4w features

w = `width` = 32 gives the issue's 32, 64, 128 channels and 128 features on 8x8 digits;
a wider one (width=64) is for fashion-mnist. The projection head is SimCLR's g. Parameter names (conv1, conv2, conv3; encoder,
head; hidden, out) are those of the PyTorch builds in benchmarks/torch_models/ssl.py.
"""
from .. import functional as F
from .. import nn


class Encoder(nn.Module):
    def __init__(self, in_channels, width, generator):
        super().__init__()
        if width < 1:
            raise ValueError(f"width={width}: the encoder needs at least 1 channel")
        self.features = 4 * int(width)
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, generator=generator)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1, generator=generator)
        self.conv3 = nn.Conv2d(2 * width, 4 * width, 3, padding=1, generator=generator)

    def forward(self, x):
        h = F.max_pool2d(self.conv2(self.conv1(x).relu()).relu(), 2)
        return self.conv3(h).relu().mean(axis=(2, 3))


class Classifier(nn.Module):
    """The encoder and a linear layer to class logits."""

    def __init__(self, in_channels, width, classes, generator):
        super().__init__()
        self.encoder = Encoder(in_channels, width, generator)
        self.head = nn.Linear(self.encoder.features, classes, generator=generator)

    def forward(self, x):
        return self.head(self.encoder(x))


class ProjectionHead(nn.Module):
    """g(h) = W2 ReLU(W1 h): the space the contrastive loss is computed in."""

    def __init__(self, features, hidden, out, generator):
        super().__init__()
        self.hidden = nn.Linear(features, hidden, generator=generator)
        self.out = nn.Linear(hidden, out, generator=generator)

    def forward(self, h):
        return self.out(self.hidden(h).relu())
