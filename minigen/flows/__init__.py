"""Normalizing flows: bijections with log-determinants, and the pieces the flow models
(minigen.models: cdf-flow, ar-flow-2d, maf, iaf, nice, realnvp, glow) are built from."""
from .base import Bijector, Chain, Inverse, standard_normal_log_prob, zero_logdet
from .preprocess import Logit, UniformDequantizer, eval_generator, make_dequantizer

__all__ = ["Bijector", "Chain", "Inverse", "Logit", "UniformDequantizer", "eval_generator", "make_dequantizer",
           "standard_normal_log_prob", "zero_logdet"]
