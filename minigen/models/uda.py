"""uda: unsupervised data augmentation (Xie et al. 2020, "Unsupervised data augmentation
for consistency training"), semi-supervised.

The prediction on a strongly augmented unlabelled image should match the prediction on a
weakly augmented view of it. Each step: the N labelled images (the shared pipeline), and
batch_size unlabelled ones twice, weakly (the shared pipeline, the config's augmentation
keys) and strongly (a harsher pipeline of the same pieces: the strong_* keys, erasing
always on). The weak prediction is sharpened by a softmax temperature and masked by its
confidence, and is a constant target (sec. 3.2, "confidence-based masking" and "sharpening
predictions"):

    q_b = softmax(f(weak(u_b)) / T),     m_b = [max_c softmax(f(weak(u_b)))_c >= threshold]
    L = CE_tsa(f(labelled), y) + weight 1/B sum_b m_b KL(q_b || softmax(f(strong(u_b))))

Training signal annealing (sec. 3.3, optional: tsa=linear|log|exp, none by default): a
labelled image whose correct class already has probability above
eta_t = alpha_t (1 - 1/K) + 1/K leaves the cross-entropy, which is the mean over the ones
left (tsa_steps: the length T of alpha_t's schedule, by default the 3000 steps). Defaults:
the paper's T = 0.4, threshold 0.8 and weight 1; strong: shift 2, crop to 0.75-1 of the
side, brightness 0.5-1.5, a 4x4 erase, noise 0.1 (RandAugment's operations do not apply to
8x8 digits; these are the shared pieces turned up); 128 unlabelled images a step.
"""
import math

from .. import functional as F
from ..autograd import no_grad, tensor
from ..model import Update
from ..representation import augment
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES, LABELS_RANGE
from ..representation.semi import confident, masked_kl, tsa_threshold
from . import register
from .semi_base import SemiSupervised

TSA = ("none", "linear", "log", "exp")


@register("uda", "unsupervised data augmentation: labels=N plus the KL from a weak view's "
          "sharpened, confidence-masked prediction to a strong view's", data=IMAGES,
          labels=50, width=32, weight=1.0, temperature=0.4, threshold=0.8, tsa="none",
          tsa_steps=3000, strong_shift=2, strong_crop_scale=0.75,
          strong_brightness=(0.5, 1.5), strong_erase=4, strong_noise=0.1, **AUGMENT,
          steps=3000, batch_size=128, lr=1e-3,
          ranges={**AUGMENT_RANGES, "labels": LABELS_RANGE, "weight": "[0, inf)",
                  "temperature": "(0, inf)", "threshold": "(0, 1]", "tsa_steps": "[1, inf)",
                  "strong_shift": "[0, inf)", "strong_crop_scale": "(0, 1]",
                  "strong_brightness": "[0, inf)", "strong_erase": "[0, inf)",
                  "strong_noise": "[0, inf)"})
class UDA(SemiSupervised):
    def __init__(self, spec, generator, weight=1.0, temperature=0.4, threshold=0.8,
                 tsa="none", tsa_steps=3000, strong_shift=2, strong_crop_scale=0.75,
                 strong_brightness=(0.5, 1.5), strong_erase=4, strong_noise=0.1, **config):
        super().__init__(spec, generator, **config)
        if not temperature > 0:
            raise ValueError(f"temperature={temperature}: the sharpening temperature must "
                             f"be > 0")
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold={threshold}: a confidence threshold is a "
                             f"probability in (0, 1]")
        if tsa not in TSA:
            raise ValueError(f"tsa={tsa}: expected one of {', '.join(TSA)}")
        self.weight, self.temperature, self.threshold = (float(weight), float(temperature),
                                                         float(threshold))
        self.tsa, self.tsa_steps = tsa, int(tsa_steps)
        try:
            self.strong = augment.pipeline(spec.shape, strong_shift, strong_crop_scale,
                                           brightness_range=strong_brightness,
                                           erase=strong_erase, erase_p=1.0,
                                           noise=strong_noise)
        except ValueError as e:
            raise ValueError(f"the strong augmentation: {e}") from None

    def weak_targets(self, weak):
        """The sharpened prediction softmax(logits / T) and the confidence mask (arrays) of
        the weak views."""
        with no_grad():
            logits = self.classifier(tensor(weak))
            mask = confident(logits.softmax(axis=1).data, self.threshold)
            return (logits / self.temperature).softmax(axis=1).data, mask

    def supervised_loss(self, logits, labels):
        """The cross-entropy of the labelled images under training signal annealing: the
        mean over those whose correct-class probability is at most eta_t."""
        eta = tsa_threshold(self.tsa, self.step_count, self.tsa_steps, self.spec.num_classes)
        losses = F.cross_entropy(logits, labels, reduction="none")
        # p_y <= eta  <=>  CE = -log p_y >= -log eta
        kept = (losses.detach().data >= -math.log(eta)).astype(losses.data.dtype)
        mean = (losses * tensor(kept, device=self.device)).sum() / max(float(kept.sum()), 1.0)
        return mean, float(kept.mean())

    def updates(self, batches, generator):
        y, labels = self.labelled_examples()
        u = self.unlabelled(batches)
        weak, strong = self.augment(u, generator), self.strong(u, generator)
        labelled_view = self.augment(y, generator)
        targets, mask = self.weak_targets(weak)
        labelled, unlabelled = self.classify(labelled_view, strong)
        classification, kept = self.supervised_loss(labelled, labels)
        consistency = masked_kl(targets, unlabelled, mask)
        yield Update("model", classification + self.weight * consistency,
                     {"classification": classification.item(),
                      "consistency": consistency.item(), "confident_share": float(mask.mean()),
                      "tsa_kept": kept})
