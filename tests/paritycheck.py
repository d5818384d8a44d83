"""What the PyTorch parity tests share (autoregressive models, flows, the vae):

    from paritycheck import assert_gradients_agree
"""
import numpy as np


def assert_gradients_agree(names, grads, grads_t, rtol=1e-4, atol=1e-5, context=""):
    """Each minigen gradient (a Tensor) equals PyTorch's (a torch tensor) of the same name
    to rtol, with an absolute tolerance of atol times the largest entry of PyTorch's (sums
    over a batch cancel); a gradient that is zero everywhere fails, since it would check
    nothing."""
    for name, g, g_t in zip(names, grads, grads_t):
        want = g_t.numpy()
        assert g.shape == want.shape, name
        scale = np.abs(want).max()
        assert scale > 0, f"gradient of {name} is zero: the check would see nothing"
        np.testing.assert_allclose(g.numpy(), want, rtol=rtol, atol=atol * scale,
                                   err_msg=f"{context}gradient of {name}")
