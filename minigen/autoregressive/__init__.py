"""Pieces that several models share: masks, masked layers, samplers."""
from .masked import MaskedLinear, made_degrees, made_masks

__all__ = ["MaskedLinear", "made_degrees", "made_masks"]
