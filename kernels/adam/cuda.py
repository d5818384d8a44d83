"""Adam's update of one parameter in place on the GPU: one CuPy elementwise kernel that
reads p, g, m and v once and writes p, m and v once, where reference.py's update is nine
array passes. The same signature as cpu.py, and, as cpu.py, reference.update's results bit
for bit.

Bit for bit, as cpu.py argues: each element goes through the reference's operations in its
order, in the array's dtype, with the scalars rounded to that dtype once as NumPy rounds a
Python scalar. Division and sqrt are IEEE's correctly rounded ones (NVRTC's default), and
--fmad=false keeps the compiler from contracting a product and a sum into one rounding (an
FMA), which the reference's separate array operations never do. One exception: CuPy
compiles every kernel with -ftz=true, so a float32 value below 2^-126 (a subnormal) is
flushed to zero here, as in CuPy's own kernels, where NumPy keeps it.
"""
import math

from .. import cudasource
from . import reference

# keep != 1 is the decoupled decay, wd != 0 the L2 one; each is skipped where it is off
# rather than multiplied by 1 or added as 0, so that an infinite p or a -0 gradient stays
# as the reference leaves it
_UPDATE = """
T decayed = keep != T(1) ? p * keep : p;
T grad = wd != T(0) ? g + wd * decayed : g;
m = m + c1 * (grad - m);
v = v * beta2 + c2 * grad * grad;
p = decayed - step_size * (m / (sqrt(v) / bias2 + eps));
"""


def update(p, g, m, v, lr, beta1, beta2, eps, step, weight_decay=0.0, decoupled=False):
    """Change p, m and v in place for Adam step `step` (1 for the first) from gradient g:
    reference.update's result, bit for bit. p, m and v are float32 or float64 CuPy arrays
    of one dtype, any layout; a g of another dtype goes to reference.update itself."""
    if g.dtype != p.dtype:
        return reference.update(p, g, m, v, lr, beta1, beta2, eps, step, weight_decay,
                                decoupled)
    dtype = cudasource.check("adam", p, g, m, v).type
    keep = dtype(1 - lr * weight_decay) if weight_decay and decoupled else dtype(1)
    wd = dtype(weight_decay) if weight_decay and not decoupled else dtype(0)
    scalars = (keep, wd, dtype(1 - beta1), dtype(beta2), dtype(1 - beta2),
               dtype(math.sqrt(1 - beta2 ** step)), dtype(eps),
               dtype(lr / (1 - beta1 ** step)))
    kernel = cudasource.elementwise(
        "T g, T keep, T wd, T c1, T beta2, T c2, T bias2, T eps, T step_size",
        "T p, T m, T v", _UPDATE, "minigen_adam_update", no_return=True,
        options=("--fmad=false",))
    kernel(g, *scalars, p, m, v)
