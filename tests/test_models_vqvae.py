"""VQ-VAE, its prior and VQ-VAE-2: the straight-through gradient, each VQ term moving only
what it should, the EMA codebook against a hand computation, dead-code restarts,
perplexity, a killed and resumed EMA run bit for bit, bad configs naming their key, and the
command line end to end (a tiny VQ-VAE, then a prior over its codes)."""
import numpy as np
import pytest

import minigen as mg
from minigen import backend, cli, models, trainer
from minigen.autoregressive.pixel_model import receptive_field
from minigen.latent.priors import ConditionedPixelCNN
from minigen.latent.quantize import VectorQuantizer, codebook_usage
from minigen.models import DataSpec
from minigen.random import Generator

from clicheck import train_sample_eval

TINY = ["steps=3", "batch_size=16", "eval_batch_size=200"]
TINY_VQ = TINY + ["codes=8", "code_dim=4", "channels=8"]
TINY_PRIOR = TINY + ["channels=8", "blocks=1", "first_kernel=3"]
DIGITS = DataSpec("digits", (1, 8, 8), "discrete", 17, 10)


def quantizer(codes=4, dim=2, **options):
    return VectorQuantizer(codes, dim, Generator(0), **options)


def grid(vectors, side=2):
    """(M, D) vectors -> one (1, D, side, M // side) grid, in raster order."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors.T.reshape(1, vectors.shape[1], side, len(vectors) // side)


def set_codebook(q, book):
    device = q.codebook.device
    q.codebook.data = backend.to_device(np.asarray(book, dtype=np.float32), device)
    q.embed_sum = np.asarray(book, dtype=np.float32).copy()  # the EMA sums stay on the host


# -- the quantizer ------------------------------------------------------------------------

def test_codes_are_the_nearest_codebook_vectors():
    q = quantizer(5, 3)
    z = np.random.default_rng(0).normal(size=(2, 3, 4, 4)).astype(np.float32)
    out = q(mg.tensor(z))
    book = q.codebook.numpy()
    distance = ((np.moveaxis(z, 1, -1)[..., None, :] - book) ** 2).sum(-1)
    np.testing.assert_array_equal(out.codes, distance.argmin(-1))
    np.testing.assert_array_equal(out.z_q.numpy(), np.moveaxis(book[out.codes], -1, 1))
    # z_e + (z_q - z_e): z_q up to rounding
    np.testing.assert_allclose(out.z.numpy(), out.z_q.numpy(), atol=1e-6)


def test_straight_through_gradient_is_the_decoders_gradient_at_z_q():
    """d loss / d z_e equals d loss / d z_q: the decoder's gradient copied through."""
    q = quantizer(6, 3)
    z_e = mg.tensor(np.random.default_rng(1).normal(size=(2, 3, 2, 2)).astype(np.float32),
                    requires_grad=True)
    out = q(z_e)
    weights = np.random.default_rng(2).normal(size=(2, 3, 2, 2)).astype(np.float32)

    def decoder_loss(z):
        return (mg.tanh(z) * weights).sum()

    (through,) = mg.grad(decoder_loss(out.z), [z_e])
    z_q = mg.tensor(out.z_q.numpy(), requires_grad=True)
    (at_z_q,) = mg.grad(decoder_loss(z_q), [z_q])
    np.testing.assert_allclose(through.numpy(), at_z_q.numpy(), rtol=1e-6)
    assert np.abs(through.numpy()).sum() > 0


def test_codebook_term_moves_only_the_codebook_and_commitment_only_the_encoder():
    q = quantizer(6, 3)
    z_e = mg.tensor(np.random.default_rng(3).normal(size=(2, 3, 2, 2)).astype(np.float32),
                    requires_grad=True)
    out = q(z_e)
    to_encoder, to_codebook = mg.grad(out.codebook_loss.sum(), [z_e, q.codebook])
    assert not np.any(to_encoder.numpy()) and np.any(to_codebook.numpy())
    # ||sg[z_e] - e||^2: d/de_k = 2 sum over the vectors assigned to k of (e_k - z_e)
    flat = np.moveaxis(z_e.numpy(), 1, -1).reshape(-1, 3)
    codes = out.codes.ravel()
    book = q.codebook.numpy()
    expected = np.zeros_like(book)
    np.add.at(expected, codes, 2 * (book[codes] - flat))
    np.testing.assert_allclose(to_codebook.numpy(), expected, rtol=1e-5, atol=1e-6)

    out = q(z_e)
    to_encoder, to_codebook = mg.grad(out.commitment.sum(), [z_e, q.codebook])
    assert np.any(to_encoder.numpy()) and not np.any(to_codebook.numpy())
    np.testing.assert_allclose(to_encoder.numpy(), 2 * (z_e.numpy() - out.z_q.numpy()),
                               rtol=1e-5, atol=1e-6)


def test_ema_update_equals_a_hand_computation():
    q = quantizer(3, 2, ema=True, decay=0.9, eps=1e-5)
    book = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]], dtype=np.float32)
    set_codebook(q, book)
    assert not any(p is q.codebook for p in q.parameters())  # a buffer, not trained
    vectors = np.array([[0.1, 0.0], [0.0, -0.2], [0.9, 1.2], [1.1, 1.0]], dtype=np.float32)
    out = q(mg.tensor(grid(vectors)))
    np.testing.assert_array_equal(out.codes.ravel(), [0, 0, 1, 1])
    q.update(out, Generator(0))

    # N_i <- g N_i + (1 - g) n_i and m_i <- g m_i + (1 - g) sum z, from N = 1 and m = e
    size = 0.9 * 1 + 0.1 * np.array([2, 2, 0])
    sums = 0.9 * book + 0.1 * np.array([vectors[:2].sum(0), vectors[2:].sum(0), [0, 0]])
    n = size.sum()
    smoothed = (size + 1e-5) / (n + 3 * 1e-5) * n
    np.testing.assert_allclose(q.codebook.numpy(), sums / smoothed[:, None], rtol=1e-6)
    np.testing.assert_allclose(q.cluster_size, size, rtol=1e-6)


def test_a_code_unused_for_restart_after_steps_is_moved_onto_an_encoder_output():
    q = quantizer(3, 2, restart_after=2)
    set_codebook(q, [[0.0, 0.0], [1.0, 1.0], [50.0, 50.0]])
    vectors = np.array([[0.1, 0.0], [0.0, -0.2], [0.9, 1.2], [1.1, 1.0]], dtype=np.float32)
    generator = Generator(0)
    out = q(mg.tensor(grid(vectors)))
    q.update(out, generator)
    np.testing.assert_array_equal(q.unused_steps, [0, 0, 1])
    assert q.codebook.numpy()[2].tolist() == [50.0, 50.0]      # one step unused: kept
    q.update(out, generator)
    restarted = q.codebook.numpy()[2]
    assert any(np.array_equal(restarted, v) for v in vectors), restarted
    np.testing.assert_array_equal(q.unused_steps, [0, 0, 0])
    np.testing.assert_array_equal(q.codebook.numpy()[:2], [[0.0, 0.0], [1.0, 1.0]])


def test_perplexity_of_a_uniform_assignment_is_the_codebook_size():
    for k in (1, 2, 7, 64):
        perplexity, used = codebook_usage(np.tile(np.arange(k), 5), k)
        assert perplexity == pytest.approx(k) and used == 1.0
    perplexity, used = codebook_usage(np.zeros(40, dtype=np.int64), 8)
    assert perplexity == pytest.approx(1.0) and used == 1 / 8
    # through the quantizer: every code chosen once
    q = quantizer(4, 2)
    out = q(mg.tensor(grid(q.codebook.numpy())))
    assert sorted(out.codes.ravel()) == [0, 1, 2, 3]
    assert codebook_usage(out.codes, 4)[0] == pytest.approx(4)


# -- the conditioned prior ----------------------------------------------------------------

def test_conditioned_pixelcnn_is_causal_in_the_codes_and_sees_the_whole_neighbouring_map():
    """VQ-VAE-2's bottom prior: the logits at a pixel depend on earlier codes only, and on
    the conditioning map around the pixel, below and right of it included."""
    shape, (row, col) = (1, 6, 6), (2, 3)
    model = ConditionedPixelCNN(DataSpec("codes", shape, "discrete", 8), Generator(0), 3,
                                channels=8, blocks=2, first_kernel=3, kernel=3)
    rng = np.random.default_rng(0)
    condition = mg.tensor(rng.normal(size=(8, 3, 6, 6)).astype(np.float32),
                          requires_grad=True)
    reached = receptive_field(model, shape, (row, col), labels=condition)[0]
    r, c = np.indices(shape[1:])
    assert not (reached & ~((r < row) | ((r == row) & (c < col)))).any()
    assert reached[row - 1, col - 1] and reached[row, col - 1]

    x = mg.tensor(rng.integers(0, 8, (8,) + shape))
    (to_map,) = mg.grad(model.logits(x, condition)[:, :, row, col].sum(), [condition])
    seen = np.abs(to_map.numpy()).sum(axis=(0, 1)) > 0
    assert seen[row + 1, col + 1] and seen[row, col] and not seen[row + 3, col]


# -- the models ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,config,key", [
    ("vq-vae", {"codes": 1}, "codes"), ("vq-vae", {"code_dim": 0}, "code_dim"),
    ("vq-vae", {"beta": -1.0}, "beta"), ("vq-vae", {"restart_after": -1}, "restart_after"),
    ("vq-vae", {"downsample": 4}, "downsample"), ("vq-vae", {"decoder": "poisson"}, "decoder"),
    ("vq-vae", {"channels": 0}, "channels"), ("vq-vae-2", {"downsample": 3}, "downsample"),
    ("vq-vae-2", {"codes": 1}, "codes")])
def test_bad_configs_name_the_key(name, config, key):
    entry = models.get(name)
    with pytest.raises(ValueError, match=key):
        entry.cls(DIGITS, Generator(0), **{**models.model_config(entry.config), **config})


@pytest.mark.parametrize("name", ["vq-vae-prior", "vq-vae-2-prior"])
def test_a_prior_without_a_vqvae_run_names_the_key(name, tmp_path):
    entry = models.get(name)
    config = models.model_config(entry.config)
    with pytest.raises(ValueError, match="vqvae="):
        entry.cls(DIGITS, Generator(0), **config)
    with pytest.raises(ValueError, match="vqvae="):
        entry.cls(DIGITS, Generator(0), **{**config, "vqvae": str(tmp_path / "nothing")})


def test_a_prior_over_a_run_of_another_model_names_the_key(tmp_path):
    trainer.train("histogram", "digits", out=tmp_path / "hist", config=TINY, progress=False)
    entry = models.get("vq-vae-prior")
    with pytest.raises(ValueError, match="vqvae=.* is a histogram run"):
        entry.cls(DIGITS, Generator(0), **{**models.model_config(entry.config),
                                          "vqvae": str(tmp_path / "hist")})


@pytest.mark.parametrize("name", ["vq-vae", "vq-vae-2"])
def test_killed_and_resumed_ema_run_is_bit_identical(name, tmp_path):
    """The EMA codebook and its running counts live outside the parameters: the checkpoint
    keeps them (extra_state), so resuming changes nothing, restarts included."""
    config = TINY_VQ[1:] + ["steps=8", "codebook_ema=true", "restart_after=2",
                            "checkpoint_every=100"]
    whole = trainer.Run(name, "digits", seed=1, out=tmp_path / "whole", config=config)
    whole.train(progress=False)
    assert trainer.train(name, "digits", seed=1, out=tmp_path / "parts", config=config,
                         progress=False, stop_after=5) is None
    resumed = trainer.Run.from_checkpoint(tmp_path / "parts" / "checkpoint.npz")
    assert resumed.step == 5
    resumed.train(progress=False)
    expected, got = whole.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == got.keys() and any("codebook" in k for k in expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    for level, state in flatten(whole.model.extra_state()).items():
        np.testing.assert_array_equal(flatten(resumed.model.extra_state())[level], state)


def flatten(state, prefix=""):
    out = {}
    for key, value in state.items():
        out.update(flatten(value, f"{prefix}{key}.") if isinstance(value, dict)
                   else {prefix + key: value})
    return out


# -- end to end ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,prior", [("vq-vae", "vq-vae-prior"),
                                        ("vq-vae-2", "vq-vae-2-prior")])
def test_cli_vqvae_then_its_prior(name, prior, tmp_path, capsys):
    metrics = train_sample_eval(name, "digits", ["--config", *TINY_VQ], tmp_path / "vq",
                                capsys)
    for key in ("test_recon_nats", "test_mse"):
        assert metrics[key] > 0
    assert (tmp_path / "vq" / "run" / "reconstructions.png").is_file()
    metrics = train_sample_eval(prior, "digits", ["--config", *TINY_PRIOR,
                                                  f"vqvae={tmp_path / 'vq' / 'run'}"],
                                tmp_path / "prior", capsys)
    levels = ["_top", "_bottom"] if name == "vq-vae-2" else [""]
    prior_nats = sum(metrics[f"test_prior_nats{level}"] for level in levels)
    assert metrics["test_nll_nats"] == pytest.approx(metrics["test_recon_nats"] + prior_nats)
    assert metrics["test_bpd"] == pytest.approx(metrics["test_nll_nats"] / (64 * np.log(2)))
    samples = tmp_path / "prior" / "s.npy"
    assert cli.main(["sample", str(tmp_path / "prior" / "run"), "--n", "3",
                     "--out", str(samples)]) == 0
    drawn = np.load(samples)
    assert drawn.shape == (3, 1, 8, 8) and drawn.dtype == np.uint8 and drawn.max() <= 16


def test_cli_prior_transformer(tmp_path, capsys):
    train_sample_eval("vq-vae", "digits", ["--config", *TINY_VQ], tmp_path / "vq", capsys)
    train_sample_eval("vq-vae-prior", "digits", [
        "--config", *TINY, "prior=transformer", "channels=8", "blocks=1",
        f"vqvae={tmp_path / 'vq' / 'run'}"], tmp_path / "prior", capsys)
