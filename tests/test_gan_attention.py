"""SAGAN's self-attention block: the identity at gamma = 0, the shape it keeps, eq. 1-3 by
hand, and gradients of first and second order (a critic with the block takes a gradient
penalty)."""
import numpy as np
import pytest

import minigen as mg
from minigen.gan.attention import SelfAttention2d
from minigen.random import Generator


def _block(channels=8, seed=0):
    return SelfAttention2d(channels, generator=Generator(seed))


def test_gamma_zero_is_the_identity_and_the_shape_is_kept():
    block = _block()
    x = mg.random.Generator(1).normal((2, 8, 3, 5))
    y = block(x)
    assert y.shape == x.shape
    np.testing.assert_array_equal(y.numpy(), x.numpy())


def test_the_block_is_eqs_1_to_3_by_hand():
    block = _block()
    block.gamma = mg.nn.Parameter(np.float32(0.7))
    x = mg.random.Generator(2).normal((2, 8, 3, 4))
    n, c, h, w = x.shape
    xs = x.numpy().astype(np.float64).reshape(n, c, h * w)

    def conv1x1(layer, a):  # (N, C_in, T) -> (N, C_out, T)
        return np.einsum("oi,nit->not", layer.weight.numpy()[:, :, 0, 0], a)

    f, g, hv = conv1x1(block.f, xs), conv1x1(block.g, xs), conv1x1(block.h, xs)
    s = np.einsum("nci,ncj->nij", f, g)                            # s_ij = f(x_i)^T g(x_j)
    beta = np.exp(s - s.max(axis=1, keepdims=True))
    beta /= beta.sum(axis=1, keepdims=True)                        # softmax over i
    o = conv1x1(block.v, np.einsum("nij,nci->ncj", beta, hv))       # v(sum_i beta_ji h(x_i))
    expected = (0.7 * o + xs).reshape(x.shape)
    np.testing.assert_allclose(block(x).numpy(), expected, rtol=1e-4, atol=1e-5)


def _as_function(block):
    """The block as a function of its input and every weight (float64 for gradcheck)."""
    def run(x, gamma, wf, wg, wh, wv):
        block.gamma, block.f.weight, block.g.weight = gamma, wf, wg
        block.h.weight, block.v.weight = wh, wv
        return block(x)
    weights = [block.f.weight, block.g.weight, block.h.weight, block.v.weight]
    return run, [mg.tensor(w.numpy().astype(np.float64), requires_grad=True)
                 for w in weights]


@pytest.mark.parametrize("gamma", [0.0, 0.6])
def test_gradients_match_finite_differences(gamma):
    block = _block(channels=8)
    run, weights = _as_function(block)
    x = mg.tensor(np.random.default_rng(3).standard_normal((2, 8, 2, 3)), dtype="float64",
                  requires_grad=True)
    g = mg.tensor(np.float64(gamma), requires_grad=True)
    assert mg.gradcheck(run, [x, g, *weights])


def test_at_gamma_zero_only_gamma_learns_and_its_gradient_is_the_attention_output():
    """dL/dgamma = sum(o * dL/dy) with o the attention output; the weights behind o get no
    gradient while gamma is 0."""
    block = _block()
    x = mg.random.Generator(4).normal((2, 8, 3, 3))
    upstream = mg.random.Generator(5).normal(x.shape)
    (block(x) * upstream).sum().backward()
    for layer in (block.f, block.g, block.h, block.v):
        assert not np.any(layer.weight.grad.numpy())
    found = block.gamma.grad.item()
    block.gamma = mg.nn.Parameter(np.float32(1.0))
    with mg.no_grad():
        o = block(x) - x
    assert found != 0.0
    np.testing.assert_allclose(found, (o * upstream).sum().item(), rtol=1e-4)


def test_second_order_gradients():
    block = _block(channels=8)
    run, weights = _as_function(block)
    x = mg.tensor(np.random.default_rng(6).standard_normal((1, 8, 2, 2)), dtype="float64",
                  requires_grad=True)
    g = mg.tensor(np.float64(0.5), requires_grad=True)
    assert mg.gradgradcheck(lambda x, g, wf: run(x, g, wf, *weights[1:]),
                            [x, g, weights[0]])


def test_bad_input_names_the_block():
    with pytest.raises(ValueError, match="SelfAttention2d"):
        _block(channels=8)(mg.zeros((1, 4, 2, 2)))


def test_the_dcgan_nets_take_the_block_at_half_size_and_start_as_without_it():
    from minigen.gan.networks import DCGANDiscriminator, DCGANGenerator
    g = DCGANGenerator(6, (1, 8, 8), channels=8, generator=Generator(0), self_attention=True)
    d = DCGANDiscriminator((1, 8, 8), channels=8, generator=Generator(1), self_attention=True)
    blocks = [m for net in (g, d) for m in net.modules() if isinstance(m, SelfAttention2d)]
    assert [b.channels for b in blocks] == [8, 8]
    z = Generator(2).normal((4, 6))

    def without_block(net, x):
        for layer in net.body:
            x = x if isinstance(layer, SelfAttention2d) else layer(x)
        return x

    with mg.no_grad():
        np.testing.assert_array_equal(g(z).numpy(), without_block(g, z).numpy())
        x = g(z)
        np.testing.assert_array_equal(d.features(x).numpy(), without_block(d, x).numpy())
