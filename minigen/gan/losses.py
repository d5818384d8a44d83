"""The GAN losses, on the discriminator's outputs: logits for the original game, critic
values for the Wasserstein and hinge ones. Every function takes (N,) Tensors and returns
the scalar mean over the batch that the player minimises.

Original game (Goodfellow et al. 2014, eq. 1), D(x) = sigmoid(l(x)):

    min_G max_D  E_data log D(x) + E_z log(1 - D(G(z)))
    discriminator:    -E log D(x) - E log(1 - D(G(z)))
                    = E softplus(-l_real) + E softplus(l_fake)
    minimax G:        E log(1 - D(G(z)))          = -E softplus(l_fake)
    non-saturating G: -E log D(G(z))              =  E softplus(-l_fake)      (sec. 3)

One-sided label smoothing (Salimans et al. 2016, sec. 3.4) puts the target of real
examples at 1 - smoothing and leaves the fake target at 0:
    -E[(1 - s) log D(x) + s log(1 - D(x))] = E[softplus(-l) + s l] on the real term.

Wasserstein (Arjovsky et al. 2017, eq. 3): the critic maximises E f(real) - E f(fake):
    critic: E f(fake) - E f(real),   generator: -E f(G(z))
Hinge (Miyato et al. 2018 / Lim and Ye 2017):
    discriminator: E relu(1 - f(real)) + E relu(1 + f(fake)),   generator: -E f(G(z))

Gradient penalty (Gulrajani et al. 2017, eq. 3), on x_hat = eps x + (1 - eps) G(z) with
ONE eps ~ U[0, 1] per example (not per pixel) and the norm over ALL of an example's
dimensions (not one axis):
    lambda E (||grad_x_hat f(x_hat)||_2 - 1)^2
"""
from ..autograd import grad
from ..ops import relu, softplus, sqrt

GP_EPS = 1e-12  # under the square root: the norm's gradient stays finite at a zero gradient


def minimax_d(real, fake, smoothing=0.0):
    """The discriminator's loss of the original game, the real targets at 1 - smoothing."""
    real_term = softplus(-real)
    if smoothing:
        real_term = real_term + smoothing * real
    return real_term.mean() + softplus(fake).mean()


def minimax_g(fake):
    """E log(1 - D(G(z))): the generator's side of the minimax game (saturates when D
    rejects the fakes confidently, the start of training)."""
    return -softplus(fake).mean()


def nonsaturating_g(fake):
    """-E log D(G(z)): the same fixed point, strong gradients when D rejects the fakes."""
    return softplus(-fake).mean()


def wasserstein_d(real, fake):
    return fake.mean() - real.mean()


def wasserstein_g(fake):
    return -fake.mean()


def hinge_d(real, fake):
    return relu(1.0 - real).mean() + relu(1.0 + fake).mean()


hinge_g = wasserstein_g


def interpolates(real, fake, eps):
    """eps x + (1 - eps) x~ with eps (N,), one weight per example, broadcast over all of
    its dimensions."""
    eps = eps.reshape((len(eps),) + (1,) * (real.ndim - 1))
    return eps * real + (1.0 - eps) * fake


def gradient_norms(critic, x):
    """||grad_x f(x)||_2 per example (N,), over all of its dimensions, as a function of
    the critic's parameters (create_graph: the penalty's own gradient is a second
    derivative, through every layer of the critic)."""
    x = x.detach()
    x.requires_grad = True
    g, = grad(critic(x).sum(), [x], create_graph=True)
    return sqrt((g * g).reshape(len(g), -1).sum(axis=1) + GP_EPS)


def gradient_penalty(critic, real, fake, eps):
    """E (||grad f(x_hat)|| - 1)^2 on the interpolates of real and fake with weights eps
    (N,); returns (penalty, the norms (N,))."""
    norms = gradient_norms(critic, interpolates(real, fake.detach(), eps))
    return ((norms - 1.0) ** 2).mean(), norms


D_LOSSES = {"minimax": minimax_d, "nonsaturating": minimax_d, "wasserstein": wasserstein_d,
            "hinge": hinge_d}
G_LOSSES = {"minimax": minimax_g, "nonsaturating": nonsaturating_g,
            "wasserstein": wasserstein_g, "hinge": hinge_g}
