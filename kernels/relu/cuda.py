"""ReLU and its gradient on the GPU: one CuPy elementwise kernel each, for float32 and
float64 CuPy arrays, with cpu.py's values: forward keeps NaN (the test is x <= 0, false for
NaN), and the gradient is a product with 1 or 0, not a select, so NaN and inf in g still
show where x <= 0, as in reference.py's g * (x > 0). CuPy compiles every kernel with
-ftz=true, so float32 subnormals count as zero here (as in CuPy's own kernels). The same
signatures as cpu.py.
"""
from .. import cudasource
from . import reference


def forward(x):
    """max(x, 0), like x; NaN stays NaN."""
    cudasource.check("relu", x)
    return cudasource.elementwise("T x", "T y", "y = x <= T(0) ? T(0) : x",
                                  "minigen_relu_forward")(x)


def grad(g, x):
    """g (x > 0), like g, for g and x of one shape and dtype (else the reference)."""
    if g.shape != x.shape or g.dtype != x.dtype:
        return reference.grad(g, x)
    cudasource.check("relu", g, x)
    return cudasource.elementwise("T g, T x", "T y", "y = g * (x > T(0) ? T(1) : T(0))",
                                  "minigen_relu_grad")(g, x)
