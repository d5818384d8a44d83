"""Adam's update of one parameter in place: `cpu` (one fused Numba pass, the default) and
`reference` (NumPy, the update as minigen.optim.Adam wrote it before the kernel), one
signature, the same float32 or float64 results bit for bit.

    from minigen.kernels import adam
    adam.cpu.update(p, g, m, v, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, step=t,
                    weight_decay=0.0, decoupled=False)
"""
import numpy as np

from . import cpu, reference

__all__ = ["cpu", "reference"]

# for minigen.backend.kernel: NumPy float32 and float64 only (other dtypes and CuPy arrays
# keep the reference, which is written with xp_of)
DTYPES = (np.float32, np.float64)
