"""The self-supervised models of issue 17 (rotation, jigsaw, relative-position,
context-encoder, cpc, moco, deep-infomax, deepcluster, mae): each trains, evaluates and
probes from the command line on a tiny config, with the probe at the end of training equal
to `minigen probe`'s; bad settings are one-line errors; and the pieces that matter are
checked against their definitions: the rotation labels are the turns applied, a jigsaw
permutation is recoverable, a neighbour patch is where its label says, the contrastive
losses equal direct NumPy computations, MoCo's queue is first in first out and its
momentum update is eq. 2, CPC's context never sees the rows it predicts, MAE's loss counts
the masked patches only and its encoder never sees them, DeepCluster reclusters once an
epoch."""
import json

import numpy as np
import pytest

import minigen as mg
from minigen import backend, cli, data, models, trainer
from minigen.autograd import grad
from minigen.model import Batch
from minigen.models import DataSpec
from minigen.random import Generator
from minigen.representation import contrastive, pretext, vit

DIGITS = DataSpec("digits", (1, 8, 8), "discrete", 17, 10)
TINY = {"rotation": ["width=2"], "jigsaw": ["width=2", "hidden=8"],
        "relative-position": ["width=2", "hidden=8"],
        "context-encoder": ["width=2", "hidden=8"],
        "cpc": ["width=2"], "moco": ["width=2", "queue=32", "projection=4"],
        "deep-infomax": ["width=2", "critic=4"], "deepcluster": ["width=2", "clusters=4"],
        "mae": ["dim=8", "heads=2", "decoder_dim=4"]}
COMMON = ["steps=2", "batch_size=16", "eval_batch_size=400"]


def run_cli(capsys, *argv):
    capsys.readouterr()
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("name", sorted(TINY))
def test_train_eval_and_probe_from_the_command_line(name, tmp_path, capsys):
    out = tmp_path / "run"
    status, _, err = run_cli(capsys, "train", name, "--data", "digits", "--out", out,
                             "--quiet", "--config", *COMMON, *TINY[name])
    assert status == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["test_pretext_loss"]) and metrics["pictures"] == []
    status, printed, err = run_cli(capsys, "eval", out)
    assert status == 0, err
    assert json.loads(printed)["test_pretext_loss"] == pytest.approx(
        metrics["test_pretext_loss"], rel=1e-5)
    status, printed, err = run_cli(capsys, "probe", out, "--quiet")
    assert status == 0, err
    probe = json.loads(printed)["linear_probe_acc"]
    assert 0.1 < probe <= 1 and probe == metrics["test_linear_probe_acc"]
    status, _, err = run_cli(capsys, "sample", out, "--out", tmp_path / "s.png")
    assert status == 2 and "no samples" in err.strip().splitlines()[-1]


def test_the_adversarial_context_encoder_updates_its_discriminator_first(tmp_path, capsys):
    model = build("context-encoder", hidden=8, adversarial=0.5)
    players = model.players()
    assert list(players) == ["discriminator", "model"]
    critic = {id(p) for p in model.critic.parameters()}
    assert {id(p) for p in players["discriminator"].parameters} == critic
    assert not critic & {id(p) for p in players["model"].parameters}
    updates = list(model.updates(batches_of(16), Generator(0)))
    assert [u.player for u in updates] == ["discriminator", "model"]
    status, _, err = run_cli(capsys, "train", "context-encoder", "--data", "digits", "--out",
                             tmp_path / "run", "--quiet", "--config", *COMMON,
                             *TINY["context-encoder"], "adversarial=0.01")
    assert status == 0, err


@pytest.mark.parametrize("name, setting, words", [
    ("moco", "temperature=0", ["temperature", "> 0"]),
    ("moco", "queue=8", ["queue=8", "batch of 16"]),
    ("moco", "momentum=1.5", ["momentum"]),
    ("mae", "mask_ratio=1", ["mask_ratio", "(0, 1)"]),
    ("mae", "mask_ratio=0", ["mask_ratio"]),
    ("mae", "mask_ratio=0.99", ["mask_ratio=0.99", "leaves 0"]),
    ("mae", "patch=3", ["patch=3"]),
    ("mae", "heads=3", ["not divisible by heads=3"]),
    ("jigsaw", "grid=3", ["grid=3"]),
    ("jigsaw", "permutations=25", ["permutations=25", "24"]),
    ("relative-position", "patch=3", ["patch=3", "at most 2"]),
    ("context-encoder", "mask_size=8", ["mask_size=8"]),
    ("context-encoder", "adversarial=-1", ["adversarial", ">= 0"]),
    ("cpc", "predict=4", ["predict=4", "1 to 3"]),
    ("cpc", "patch=3", ["patch=3"]),
    ("cpc", "patch=1", ["patch=1", "at least 2x2"]),
    ("relative-position", "patch=1", ["patch=1", "at least 2"]),
    ("deep-infomax", "estimator=mine", ["estimator='mine'", "jsd"]),
    ("deepcluster", "clusters=5000", ["clusters=5000", "1437"]),
    ("rotation", "shift=8", ["shift=8"]),
])
def test_bad_settings_are_one_line_errors(name, setting, words, tmp_path, capsys):
    status, _, err = run_cli(capsys, "train", name, "--data", "digits", "--out",
                             tmp_path / "run", "--quiet", "--config", *COMMON, *TINY[name],
                             setting)
    assert status == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("minigen: error: ")
    for word in words:
        assert word in last, last


def test_rotation_refuses_images_that_are_not_square():
    with pytest.raises(ValueError, match="square"):
        models.get("rotation").cls(DataSpec("wide", (1, 8, 6), "discrete", 17, 10),
                                   Generator(0), width=2)


def build(name, x=None, y=None, **config):
    entry = models.get(name)
    model = entry.cls(DIGITS, Generator(0), **{**models.model_config(entry.config),
                                              **config})
    if x is None:
        x, y = data.load("digits")
    model.set_training_split(x, y)
    return model


def batches_of(n, x=None):
    """A step's batches: each next() the next n training digits."""
    images = data.load("digits")[0] if x is None else x

    class Batches:
        start = 0

        def next(self):
            index = np.arange(self.start, self.start + n) % len(images)
            self.start += n
            return Batch(mg.tensor(images[index]))
    return Batches()


# pretext tasks -------------------------------------------------------------------------

def test_the_rotation_labels_are_the_turns_applied():
    y = np.random.default_rng(0).random((3, 1, 5, 5)).astype(np.float32)
    turned, labels = pretext.rotations(y)
    assert turned.shape == (12, 1, 5, 5)
    np.testing.assert_array_equal(labels, np.repeat(np.arange(4), 3))
    for i, k in enumerate(labels):
        np.testing.assert_array_equal(turned[i, 0], np.rot90(y[i % 3, 0], k))


def test_a_jigsaw_permutation_is_recoverable():
    rng = np.random.default_rng(0)
    y = rng.random((6, 1, 8, 8)).astype(np.float32)
    tiles = pretext.tiles(y, 2)
    np.testing.assert_array_equal(tiles[:, 1, 0], y[:, 0, :4, 4:])  # raster order
    np.testing.assert_array_equal(pretext.untile(tiles, 2), y)
    permutations = pretext.permutation_set(4, 24)
    assert len({tuple(p) for p in permutations}) == 24
    labels = rng.integers(0, 24, len(y))
    shuffled = pretext.permute(tiles, permutations, labels)
    for n, k in enumerate(labels):  # the label's permutation puts the tiles back
        back = shuffled[n][np.argsort(permutations[k])]
        np.testing.assert_array_equal(pretext.untile(back[None], 2)[0], y[n])


def test_the_permutation_set_is_greedy_in_hamming_distance():
    chosen = pretext.permutation_set(4, 6)
    np.testing.assert_array_equal(chosen[0], [0, 1, 2, 3])
    every = pretext.permutation_set(4, 24)
    for i in range(1, 6):  # each the farthest of all from those before it
        def least(p):
            return (chosen[:i] != p).sum(axis=1).min()
        assert least(chosen[i]) == max(least(p) for p in every)
    distances = (chosen[:4, None] != chosen[None, :4]).sum(axis=2)
    assert (distances[np.triu_indices(4, 1)] == 4).all()  # four orders with no tile alike


def test_a_neighbour_patch_is_where_its_label_says():
    y = np.arange(2 * 81, dtype=np.float32).reshape(2, 1, 9, 9)
    centres, neighbours, labels = pretext.patch_pairs(y, Generator(3), 3)
    for n in range(2):  # a 3x3 grid of 3x3 patches fills a 9x9 image: no offset
        np.testing.assert_array_equal(centres[n, 0], y[n, 0, 3:6, 3:6])
        dr, dc = pretext.NEIGHBOURS[labels[n]]
        np.testing.assert_array_equal(neighbours[n, 0],
                                      y[n, 0, 3 + 3 * dr:6 + 3 * dr, 3 + 3 * dc:6 + 3 * dc])


def test_the_context_encoder_scores_the_masked_region_only():
    model = build("context-encoder", width=2, hidden=8)
    y = data.load("digits")[0][:4].astype(np.float32) / 16
    mask = pretext.square_masks((1, 8, 8), Generator(0), 4, 4)
    assert (mask.sum(axis=(1, 2, 3)) == 16).all()
    painted = mg.tensor(np.random.default_rng(0).random(y.shape).astype(np.float32),
                        requires_grad=True)
    loss = model.reconstruction(y, painted, mask)
    expected = (((y - painted.numpy()) * mask) ** 2).sum() / mask.sum()
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    (g,) = grad(loss, [painted])
    assert (g.numpy()[np.broadcast_to(mask, y.shape) == 0] == 0).all()
    # the encoder sees the image with the region set to 0
    completed, _ = model.inpaint(y, mask)
    np.testing.assert_array_equal(completed.numpy()[mask.astype(bool) == 0],
                                  y[mask.astype(bool) == 0])


# contrastive losses --------------------------------------------------------------------

def log_softmax(a):
    a = a - a.max(axis=1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=1, keepdims=True))


def test_info_nce_is_the_direct_computation():
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(2, 7, 5))
    expected = -np.mean(np.diag(log_softmax(q @ k.T / 0.5)))
    loss = contrastive.info_nce(mg.tensor(q, dtype=np.float64),
                                mg.tensor(k, dtype=np.float64), 0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="temperature"):
        contrastive.info_nce(mg.tensor(q), mg.tensor(k), 0.0)


def test_the_moco_loss_is_the_direct_computation():
    rng = np.random.default_rng(1)
    q, k = rng.normal(size=(2, 4, 3))
    queue = rng.normal(size=(6, 3))
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    uq, uk = unit(q), unit(k)
    logits = np.concatenate([(uq * uk).sum(1, keepdims=True), uq @ queue.T], axis=1) / 0.2
    expected = -np.mean(log_softmax(logits)[:, 0])
    loss = contrastive.moco_loss(mg.tensor(q, dtype=np.float64),
                                 mg.tensor(k, dtype=np.float64), queue, 0.2)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_the_deep_infomax_estimators_are_the_direct_computations():
    rng = np.random.default_rng(2)
    g = rng.normal(size=(3, 4))
    local = rng.normal(size=(3, 4, 2, 2))
    s = np.einsum("id,mdj->imj", g, local.reshape(3, 4, 4))  # S[i, m, j]
    softplus = lambda a: np.logaddexp(0, a)  # noqa: E731
    own = np.eye(3, dtype=bool)
    jsd = softplus(-s[own]).mean() + softplus(s[~own]).mean()
    nce = -np.mean([log_softmax(s[:, i, j][None])[0, i] for i in range(3) for j in range(4)])
    args = mg.tensor(g, dtype=np.float64), mg.tensor(local, dtype=np.float64)
    assert contrastive.dim_jsd(*args).item() == pytest.approx(jsd, rel=1e-10)
    assert contrastive.dim_infonce(*args).item() == pytest.approx(nce, rel=1e-10)


def test_the_moco_queue_is_first_in_first_out():
    queue = contrastive.FeatureQueue(5, 2, Generator(0))
    np.testing.assert_allclose(np.linalg.norm(queue.keys, axis=1), 1, rtol=1e-6)
    for i in range(4):  # keys 1, 2, ..., 8, two at a time
        queue.enqueue(np.repeat(np.arange(2 * i + 1, 2 * i + 3, dtype=np.float32)[:, None],
                                2, axis=1))
    # 8 keys through a queue of 5: the oldest overwritten first, so the last 5 remain, in
    # the order they came from the pointer on
    np.testing.assert_array_equal(queue.keys[:, 0], [6, 7, 8, 4, 5])
    assert queue.pointer == 3
    np.testing.assert_array_equal(np.roll(queue.keys[:, 0], -queue.pointer), [4, 5, 6, 7, 8])
    with pytest.raises(ValueError, match="at least the batch"):
        queue.enqueue(np.zeros((6, 2), np.float32))


def test_the_moco_momentum_update_and_enqueue_after_a_step():
    model = build("moco", width=2, queue=32, projection=4, momentum=0.9)
    for q, k in zip(model.query_parameters(), model.momentum_parameters()):
        np.testing.assert_array_equal(q.numpy(), k.numpy())
        assert not k.requires_grad
    assert model.players()["model"].parameters == model.query_parameters()
    update = next(model.updates(batches_of(16), Generator(0)))
    assert np.isfinite(update.loss.item())
    keys = backend.to_numpy(model.pending).copy()
    before = [k.numpy().copy() for k in model.momentum_parameters()]
    for p in model.query_parameters():
        p.data += 1.0  # an optimiser step
    model.after_update("model")
    for old, k, q in zip(before, model.momentum_parameters(), model.query_parameters()):
        np.testing.assert_allclose(k.numpy(), 0.9 * old + 0.1 * q.numpy(), rtol=1e-6,
                                   atol=1e-7)
    np.testing.assert_array_equal(backend.to_numpy(model.queue.keys[:16]), keys)
    assert model.queue.pointer == 16


def test_shuffle_bn_normalises_each_half_alone_and_keeps_the_order():
    head = contrastive.NormalisedHead(3, 4, 2, Generator(0))
    features = mg.tensor(np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32))
    generator = Generator(1)
    order = Generator(1).rng.permutation(6)
    out = contrastive.shuffled_halves(head, features, generator).numpy()
    for half in (order[:3], order[3:]):  # each row as its half alone gives it
        np.testing.assert_allclose(out[half], head(features[half]).numpy(), rtol=1e-5,
                                   atol=1e-6)
    head.eval()  # with the running statistics the halves make no difference
    np.testing.assert_allclose(contrastive.shuffled_halves(head, features, Generator(2))
                               .numpy(), head(features).numpy(), rtol=1e-5, atol=1e-6)


def test_a_resumed_moco_run_ends_as_an_uninterrupted_one(tmp_path):
    config = COMMON + TINY["moco"] + ["steps=4"]
    whole = trainer.Run("moco", "digits", out=tmp_path / "whole", config=config)
    whole.train(progress=False)
    part = trainer.Run("moco", "digits", out=tmp_path / "part", config=config)
    part.train(progress=False, stop_after=2)
    resumed = trainer.Run.from_checkpoint(tmp_path / "part" / "checkpoint.npz")
    assert resumed.model.queue.pointer == 32 % 32
    resumed.train(progress=False)
    np.testing.assert_array_equal(whole.model.queue.keys, resumed.model.queue.keys)
    for (name, a), (_, b) in zip(whole.model.named_parameters(),
                                 resumed.model.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_the_cpc_context_never_sees_the_rows_it_predicts():
    model = build("cpc", width=2, context=2)
    z = mg.tensor(np.random.default_rng(0).normal(size=(2, 8, 4, 4)).astype(np.float32),
                  requires_grad=True)
    c = z
    for layer in model.context:
        c = layer(c).relu()
    for row in range(4):
        (g,) = grad(c[:, :, row].sum(), [z], retain_graph=True)
        assert (g.numpy()[:, :, row + 1:] == 0).all(), row
        assert np.abs(g.numpy()[:, :, :row + 1]).sum() > 0


def test_cpc_codes_each_patch_alone():
    model = build("cpc", width=2)
    y = np.random.default_rng(0).random((2, 1, 8, 8)).astype(np.float32)
    changed = y.copy()
    changed[:, :, 6:, 6:] = 0.0  # the last patch of the 4x4 grid of 2x2 patches
    a, b = model.codes(y).numpy(), model.codes(changed).numpy()
    np.testing.assert_array_equal(a[:, :, :3], b[:, :, :3])
    np.testing.assert_array_equal(a[:, :, 3, :3], b[:, :, 3, :3])


# mae -----------------------------------------------------------------------------------

def test_the_mae_loss_counts_the_masked_patches_only():
    rng = np.random.default_rng(0)
    predicted = mg.tensor(rng.random((2, 4, 3)).astype(np.float64), requires_grad=True)
    target = rng.random((2, 4, 3))
    masked = np.array([[1, 0, 0, 1], [0, 1, 0, 0]], np.float32)
    loss = vit.masked_patch_loss(predicted, target, masked)
    per_patch = ((predicted.numpy() - target) ** 2).mean(axis=2)
    assert loss.item() == pytest.approx(per_patch[masked == 1].mean(), rel=1e-10)
    (g,) = grad(loss, [predicted])
    assert (g.numpy()[masked == 0] == 0).all() and (g.numpy()[masked == 1] != 0).all()


def test_the_mae_encoder_sees_the_visible_patches_only():
    model = build("mae", dim=8, heads=2, decoder_dim=4)
    assert model.patches == 16 and model.visible == 4
    order, masked = vit.random_masking(3, 16, 4, Generator(0))
    assert (masked.sum(axis=1) == 12).all()
    assert (np.take_along_axis(masked, order[:, :4], axis=1) == 0).all()
    y = np.random.default_rng(1).random((3, 1, 8, 8)).astype(np.float32)
    patches = vit.patchify(y, 2)
    other = patches.copy()
    other[masked == 1] = 0.5  # the hidden patches changed
    seen = order[:, :4]
    np.testing.assert_array_equal(model.encode(patches, seen).numpy(),
                                  model.encode(other, seen).numpy())
    for ratio in (0.0, 1.0):
        with pytest.raises(ValueError, match="mask_ratio"):
            vit.visible_count(16, ratio)


# deepcluster ---------------------------------------------------------------------------

def test_deepcluster_reclusters_once_an_epoch_from_the_runs_generator():
    x, y = data.load("digits")
    x, y = x[:40], y[:40]
    runs = []
    for _ in range(2):
        model = build("deepcluster", x, y, width=2, clusters=4)
        batches, generator, logged = batches_of(16, x), Generator(5), []
        for _ in range(4):
            update = next(model.updates(batches, generator))
            logged.append("clusters_used" in update.logs)
            assert np.isfinite(update.loss.item())
        runs.append(model.pseudo_labels.copy())
        # 16 images a step, 40 an epoch: clustering before steps 1 and 4
        assert logged == [True, False, False, True] and model.seen == 16
    np.testing.assert_array_equal(runs[0], runs[1])
    assert runs[0].shape == (40,) and set(runs[0]) <= set(range(4))


def test_new_clusters_take_the_labels_they_share_most_images_with():
    from minigen.models.deepcluster import matched_numbering
    rng = np.random.default_rng(0)
    old = rng.integers(0, 5, 200)
    renamed = np.array([3, 0, 4, 1, 2])[old]  # the same clusters, numbered otherwise
    numbering = matched_numbering(old, renamed, 5)
    np.testing.assert_array_equal(numbering[renamed], old)
    changed = renamed.copy()
    changed[:20] = rng.integers(0, 5, 20)  # a few images move: the numbering holds
    np.testing.assert_array_equal(matched_numbering(old, changed, 5), numbering)


def test_a_resumed_deepcluster_run_ends_as_an_uninterrupted_one(tmp_path):
    config = COMMON + TINY["deepcluster"] + ["steps=4", "batch_size=512"]
    whole = trainer.Run("deepcluster", "digits", out=tmp_path / "whole", config=config)
    whole.train(progress=False)
    part = trainer.Run("deepcluster", "digits", out=tmp_path / "part", config=config)
    part.train(progress=False, stop_after=2)
    resumed = trainer.Run.from_checkpoint(tmp_path / "part" / "checkpoint.npz")
    resumed.train(progress=False)
    np.testing.assert_array_equal(whole.model.pseudo_labels, resumed.model.pseudo_labels)
    for (name, a), (_, b) in zip(whole.model.named_parameters(),
                                 resumed.model.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
