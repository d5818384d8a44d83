"""minigen.nn: Module bookkeeping (registration, names, state dicts and their errors,
train/eval), the layers against minigen.functional and torch, and the initialisers'
statistics."""
import math

import numpy as np
import pytest

import minigen as mg
import minigen.functional as F
from minigen import backend, nn
from minigen.nn import init


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.norm = nn.BatchNorm2d(3)
        self.scale = nn.Parameter(mg.ones(3, 1, 1))
        self.not_a_parameter = mg.ones(2)
        self.plain_list = [nn.Linear(2, 2)]

    def forward(self, x):
        return mg.relu(self.norm(self.conv(x))) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.heads = nn.ModuleList([nn.Linear(3, 4), nn.Linear(4, 2, bias=False)])
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(2, 1))

    def forward(self, x):
        h = self.block(x).mean(axis=(2, 3))
        for head in self.heads:
            h = head(h)
        return self.out(h)


# each module's own parameters, then its children's, as in torch
NET_PARAMETERS = [
    ("block.scale", (3, 1, 1)), ("block.conv.weight", (3, 2, 3, 3)), ("block.conv.bias", (3,)),
    ("block.norm.weight", (3,)), ("block.norm.bias", (3,)),
    ("heads.0.weight", (4, 3)), ("heads.0.bias", (4,)), ("heads.1.weight", (2, 4)),
    ("out.1.weight", (1, 2)), ("out.1.bias", (1,)),
]


# ---------------------------------------------------------------- Parameter and Module


def test_parameter_is_a_float_leaf_that_requires_grad():
    p = nn.Parameter(np.zeros((2, 3), dtype=np.float64))
    assert isinstance(p, mg.Tensor) and p.requires_grad and p.is_leaf
    assert p.dtype == np.float64 and p.shape == (2, 3)
    assert nn.Parameter([1.0, 2.0]).dtype == np.float32
    assert type(p * 2.0) is mg.Tensor
    assert repr(nn.Parameter([1.0])).startswith("Parameter(")
    with pytest.raises(TypeError, match="floating-point"):
        nn.Parameter(np.arange(3))


def test_parameters_and_submodules_register_by_assignment_in_order():
    net = Net()
    assert [(n, p.shape) for n, p in net.named_parameters()] == NET_PARAMETERS
    assert len(list(net.parameters())) == len(NET_PARAMETERS)
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())
    assert [type(m).__name__ for m in net.children()] == ["Block", "ModuleList", "Sequential"]
    assert [name for name, _ in net.named_modules()] == [
        "", "block", "block.conv", "block.norm", "heads", "heads.0", "heads.1", "out",
        "out.0", "out.1"]
    assert sum(1 for _ in net.modules()) == 10
    assert [n for n, _ in net.named_buffers()] == ["block.norm.running_mean",
                                                   "block.norm.running_var"]


def test_shared_parameters_and_modules_are_listed_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = self.a
            self.w = self.a.weight

    tied = Tied()
    assert [n for n, _ in tied.named_parameters()] == ["w", "a.bias"]  # own ones first
    assert list(tied.state_dict()) == ["w", "a.bias"]
    assert [n for n, _ in tied.named_modules()] == ["", "a"]


def test_forgetting_super_init_gives_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.lin = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"forget to call super\(\).__init__\(\)"):
        Broken().register_buffer("x", mg.zeros(1))
    with pytest.raises(AttributeError, match=r"forget to call super\(\).__init__\(\)"):
        Broken().state_dict()


def test_call_runs_forward_and_backward_fills_every_parameter():
    net = Net()
    y = net(mg.randn(4, 2, 5, 5))
    assert y.shape == (4, 1)
    y.sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_repr_shows_the_tree():
    text = repr(Net())
    assert text.startswith("Net(\n  (block): Block(\n    (conv): Conv2d(2, 3, kernel_size=(3, 3)")
    assert "(heads): ModuleList(\n    (0): Linear(in_features=3, out_features=4, bias=True)" in text
    assert "(1): Linear(in_features=4, out_features=2, bias=False)" in text
    assert repr(nn.ReLU()) == "ReLU()"


def test_sequential_and_module_list_behave_like_lists():
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[1], nn.Tanh)
    assert isinstance(seq[-1], nn.Linear) and seq[-1].out_features == 1
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2
    x = mg.randn(5, 2)
    np.testing.assert_allclose(seq(x).numpy(), seq[2](seq[1](seq[0](x))).numpy())
    layers = nn.ModuleList()
    layers.append(nn.Linear(1, 1)).extend([nn.ReLU(), nn.Linear(1, 1)])
    assert len(layers) == 3 and [n for n, _ in layers.named_parameters()] == [
        "0.weight", "0.bias", "2.weight", "2.bias"]
    assert isinstance(layers[1:], nn.ModuleList)
    with pytest.raises(TypeError, match="holds Modules"):
        layers.append(lambda x: x)


# ---------------------------------------------------------------- state dicts


def test_state_dict_holds_numpy_copies_of_parameters_and_buffers():
    net = Net()
    state = net.state_dict()
    assert list(state) == [
        "block.scale", "block.conv.weight", "block.conv.bias", "block.norm.weight",
        "block.norm.bias", "block.norm.running_mean", "block.norm.running_var",
        "heads.0.weight", "heads.0.bias", "heads.1.weight", "out.1.weight", "out.1.bias"]
    assert all(type(v) is np.ndarray for v in state.values())
    state["block.conv.weight"][...] = 0.0
    assert np.abs(net.block.conv.weight.numpy()).sum() > 0


def test_a_non_persistent_buffer_moves_with_to_but_is_not_saved(monkeypatch):
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 2)
            self.register_buffer("mask", mg.ones(2, 2), persistent=False)
            self.register_buffer("count", mg.zeros(1))

    net = Masked()
    assert [n for n, _ in net.named_buffers()] == ["mask", "count"]
    assert list(net.state_dict()) == ["count", "linear.weight", "linear.bias"]
    assert net.load_state_dict(net.state_dict()) == ([], [])
    moved, to_device = [], backend.to_device
    monkeypatch.setattr(backend, "to_device",
                        lambda array, device: moved.append(array) or to_device(array, device))
    mask = net.mask.data
    assert net.to("cpu") is net
    assert any(array is mask for array in moved) and net.mask.device == "cpu"


def test_state_dict_round_trip_reproduces_the_model():
    mg.random.seed(0)
    a = Net()
    a(mg.randn(8, 2, 4, 4))  # training step: moves BatchNorm's running statistics
    mg.random.seed(1)
    b = Net()
    x = mg.randn(3, 2, 4, 4)
    a.eval(), b.eval()
    assert not np.allclose(a(x).numpy(), b(x).numpy())
    missing, unexpected = b.load_state_dict(a.state_dict())
    assert missing == [] and unexpected == []
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    for (name, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_array_equal(va, vb, err_msg=name)


def test_load_state_dict_keeps_dtype_and_tensor_identity():
    lin = nn.Linear(2, 2, dtype="float64")
    weight = lin.weight
    lin.load_state_dict({"weight": np.ones((2, 2), dtype=np.float32),
                         "bias": mg.tensor([1.0, 2.0])})
    assert lin.weight is weight and weight.dtype == np.float64
    np.testing.assert_array_equal(lin.bias.numpy(), [1.0, 2.0])


def test_load_state_dict_names_a_missing_key():
    state = Net().state_dict()
    del state["heads.1.weight"]
    with pytest.raises(ValueError, match=r"missing keys: heads\.1\.weight"):
        Net().load_state_dict(state)


def test_load_state_dict_names_an_unexpected_key():
    state = Net().state_dict()
    state["heads.2.weight"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"unexpected keys: heads\.2\.weight"):
        Net().load_state_dict(state)


def test_load_state_dict_names_a_shape_mismatch_even_when_not_strict():
    state = Net().state_dict()
    state["out.1.weight"] = np.zeros((1, 3))
    for strict in (True, False):
        with pytest.raises(ValueError, match=r"shape mismatches: out\.1\.weight: checkpoint "
                                             r"\(1, 3\), model \(1, 2\)"):
            Net().load_state_dict(state, strict=strict)


def test_load_state_dict_lists_every_problem_and_loads_nothing_on_error():
    net = Net()
    before = net.state_dict()
    state = {k: np.zeros_like(v) for k, v in before.items()}
    del state["block.scale"]
    state["extra"] = np.zeros(1)
    with pytest.raises(ValueError) as error:
        net.load_state_dict(state)
    assert "block.scale" in str(error.value) and "extra" in str(error.value)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_non_strict_load_skips_and_reports_unmatched_keys():
    net = Net()
    state = {"block.scale": np.full((3, 1, 1), 2.0), "other": np.zeros(2)}
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert unexpected == ["other"] and "block.scale" not in missing
    assert len(missing) == len(net.state_dict()) - 1
    np.testing.assert_array_equal(net.block.scale.numpy(), 2.0)


# ---------------------------------------------------------------- train and eval


def test_train_and_eval_switch_every_module():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.train(False)
    assert not net.block.norm.training


def test_dropout_drops_in_training_and_is_the_identity_in_evaluation():
    drop = nn.Dropout(0.5)
    x = mg.ones(100, 100)
    y = drop(x).numpy()
    assert 0.45 < (y == 0).mean() < 0.55
    np.testing.assert_allclose(y[y != 0], 2.0)
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        nn.Dropout(-0.1)


def test_batch_norm_uses_batch_statistics_in_training_and_running_ones_in_evaluation():
    mg.random.seed(2)
    bn = nn.BatchNorm2d(3, momentum=0.5)
    x = mg.randn(16, 3, 4, 4) * 3.0 + 2.0
    y = bn(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1.0, atol=1e-3)
    xs = x.numpy().astype(np.float64)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.5 * xs.mean(axis=(0, 2, 3)),
                               rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(),
                               0.5 + 0.5 * xs.var(axis=(0, 2, 3), ddof=1), rtol=1e-5)
    bn.eval()
    stats = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()
    z = bn(x).numpy()
    ref = ((xs - stats[0][None, :, None, None]) / np.sqrt(stats[1][None, :, None, None] + 1e-5))
    np.testing.assert_allclose(z, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean.numpy(), stats[0])
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected an input with 4 dimensions"):
        bn(mg.zeros(2, 3))


def test_batch_norm_without_running_stats_always_uses_the_batch():
    bn = nn.BatchNorm1d(2, track_running_stats=False, affine=False).eval()
    assert list(bn.state_dict()) == [] and list(bn.parameters()) == []
    x = mg.randn(6, 2, 3)
    np.testing.assert_allclose(bn(x).numpy(), F.batch_norm(x, None, None, training=True).numpy())


# ---------------------------------------------------------------- layers


def test_layers_compute_their_functional():
    mg.random.seed(3)
    x2, x1, x4 = mg.randn(3, 5), mg.randn(2, 3, 9), mg.randn(2, 3, 8, 8)
    lin = nn.Linear(5, 4)
    np.testing.assert_array_equal(lin(x2).numpy(), F.linear(x2, lin.weight, lin.bias).numpy())
    c1 = nn.Conv1d(3, 4, 3, stride=2, padding=1, dilation=2)
    assert c1.weight.shape == (4, 3, 3)
    np.testing.assert_array_equal(c1(x1).numpy(),
                                  F.conv1d(x1, c1.weight, c1.bias, 2, 1, 2).numpy())
    c2 = nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=1, bias=False)
    assert c2.weight.shape == (4, 3, 3, 2) and c2.bias is None
    np.testing.assert_array_equal(c2(x4).numpy(), F.conv2d(x4, c2.weight, None, (2, 1), 1).numpy())
    ct = nn.ConvTranspose2d(3, 5, 4, stride=2, padding=1, output_padding=1)
    assert ct.weight.shape == (3, 5, 4, 4) and ct(x4).shape == (2, 5, 17, 17)
    np.testing.assert_array_equal(
        ct(x4).numpy(), F.conv_transpose2d(x4, ct.weight, ct.bias, 2, 1, 1).numpy())
    emb = nn.Embedding(10, 3)
    np.testing.assert_array_equal(emb(np.array([[1, 9]])).numpy(), emb.weight.numpy()[[[1, 9]]])
    ln = nn.LayerNorm((8, 8))
    np.testing.assert_allclose(ln(x4).numpy(), F.layer_norm(x4, (8, 8)).numpy())
    assert [n for n, _ in ln.named_parameters()] == ["weight", "bias"]


def test_layers_take_a_dtype_and_a_device():
    for layer in (nn.Linear(2, 3, dtype="float64"), nn.Conv2d(1, 2, 3, dtype=np.float64),
                  nn.BatchNorm1d(4, dtype="float64", device="cpu")):
        assert all(t.dtype == np.float64 for _, t in layer.state_dict().items())
        assert all(t.device == "cpu" for t in layer.parameters())
        assert layer.to("cpu") is layer
    assert nn.Linear(2, 3).weight.dtype == np.float32
    with pytest.raises(TypeError, match="floating-point parameters"):
        nn.Linear(2, 3, dtype="int64")


@pytest.mark.parametrize("module, fn", [
    (nn.ReLU(), mg.relu), (nn.LeakyReLU(0.2), lambda x: mg.leaky_relu(x, 0.2)),
    (nn.ELU(0.5), lambda x: mg.elu(x, 0.5)), (nn.GELU(), mg.gelu),
    (nn.GELU("tanh"), lambda x: mg.gelu(x, "tanh")), (nn.Tanh(), mg.tanh),
    (nn.Sigmoid(), mg.sigmoid), (nn.Softplus(), mg.softplus), (nn.SiLU(), F.silu),
    (nn.Identity(), lambda x: x)])
def test_activation_modules(module, fn):
    x = mg.randn(4, 5)
    np.testing.assert_array_equal(module(x).numpy(), fn(x).numpy())
    assert list(module.parameters()) == []


def test_group_norm_layer_computes_its_functional_and_checks_its_input():
    x = mg.randn(2, 6, 3, 4)
    gn = nn.GroupNorm(3, 6)
    assert [n for n, _ in gn.named_parameters()] == ["weight", "bias"]
    np.testing.assert_array_equal(gn.weight.numpy(), np.ones(6, np.float32))
    np.testing.assert_array_equal(gn(x).numpy(), F.group_norm(x, 3, gn.weight, gn.bias).numpy())
    groups = gn(x).numpy().reshape(2, 3, -1)
    np.testing.assert_allclose(groups.mean(-1), 0.0, atol=1e-6)
    np.testing.assert_allclose(groups.var(-1), 1.0, rtol=1e-4)
    assert list(nn.GroupNorm(2, 4, affine=False).parameters()) == []
    with pytest.raises(ValueError, match="positive divisor of num_channels"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"expected an input \(N, 6, ...\)"):
        gn(mg.randn(2, 4, 3))
    with pytest.raises(ValueError, match="group_norm: num_groups must be a positive divisor"):
        F.group_norm(x, 4)


@pytest.mark.parametrize("shape, groups", [((3, 6, 4, 5), 3), ((2, 8, 7), 8), ((4, 4), 1),
                                           ((2, 64, 8, 8), 8)])
def test_group_norm_and_silu_match_torch(shape, groups):
    """Forward and the vector-Jacobian product of every input, in float64."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape) * 3 + 1
    w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    v = rng.standard_normal(shape)
    ours = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.silu(F.group_norm(ours[0], groups, ours[1], ours[2]))
    y_t = torch.nn.functional.silu(torch.nn.functional.group_norm(theirs[0], groups, theirs[1],
                                                                  theirs[2]))
    np.testing.assert_allclose(y.numpy(), y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    grads = mg.grad(y, ours, grad_outputs=mg.tensor(v))
    grads_t = torch.autograd.grad(y_t, theirs, grad_outputs=torch.tensor(v))
    for name, g, g_t in zip("xwb", grads, grads_t):
        np.testing.assert_allclose(g.numpy(), g_t.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=f"gradient of {name}")


def test_a_small_conv_net_learns():
    mg.random.seed(4)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU())
    head = nn.Linear(4, 2)
    x = mg.randn(16, 1, 6, 6)
    labels = (x.numpy().mean(axis=(1, 2, 3)) > 0).astype(np.int64)
    losses = []
    for _ in range(60):
        loss = F.cross_entropy(head(net(x).mean(axis=(2, 3))), labels)
        losses.append(loss.item())
        net.zero_grad(), head.zero_grad()
        loss.backward()
        for p in list(net.parameters()) + list(head.parameters()):
            p.data -= 0.3 * p.grad.data
    assert losses[-1] < 0.5 * losses[0]


# ---------------------------------------------------------------- initialisation


def test_default_linear_and_conv_init_match_torch_bounds():
    """kaiming_uniform(a=sqrt(5)) gives weights uniform in +-1/sqrt(fan_in); bias alike."""
    mg.random.seed(5)
    for layer, fan_in in ((nn.Linear(200, 300), 200), (nn.Conv2d(16, 64, 5), 400),
                          (nn.ConvTranspose2d(64, 16, 5), 400), (nn.Conv1d(20, 300, 4), 80)):
        bound = 1 / math.sqrt(fan_in)
        w, b = layer.weight.numpy(), layer.bias.numpy()
        assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
        assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound / math.sqrt(3)
        assert np.abs(w).max() > 0.99 * bound


def test_kaiming_and_xavier_standard_deviations():
    w = nn.Parameter(mg.zeros(512, 512))
    gen = mg.random.Generator(0)
    relu_std = math.sqrt(2 / 512)
    for fill, std in [
            (lambda: init.kaiming_uniform_(w, nonlinearity="relu", generator=gen), relu_std),
            (lambda: init.kaiming_normal_(w, nonlinearity="relu", generator=gen), relu_std),
            (lambda: init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu",
                                          generator=gen), relu_std),
            (lambda: init.xavier_uniform_(w, generator=gen), math.sqrt(2 / 1024)),
            (lambda: init.xavier_normal_(w, gain=2.0, generator=gen), 2 * math.sqrt(2 / 1024)),
            (lambda: init.normal_(w, 1.0, 0.3, generator=gen), 0.3),
            (lambda: init.uniform_(w, -2.0, 2.0, generator=gen), 4 / math.sqrt(12))]:
        assert fill() is w
        assert abs(w.numpy().std() - std) < 0.1 * std
    init.kaiming_uniform_(w, nonlinearity="relu", generator=gen)
    assert np.abs(w.numpy()).max() <= math.sqrt(3) * relu_std
    init.normal_(w, 1.0, 0.3, generator=gen)
    assert abs(w.numpy().mean() - 1.0) < 0.01


def test_orthogonal_init_gives_orthonormal_rows_or_columns():
    for shape in [(64, 64), (32, 100), (100, 32), (8, 4, 3, 3)]:
        w = nn.Parameter(mg.zeros(*shape, dtype="float64"))
        init.orthogonal_(w, gain=2.0, generator=mg.random.Generator(1))
        m = w.numpy().reshape(shape[0], -1)
        small = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
        np.testing.assert_allclose(small, 4.0 * np.eye(min(m.shape)), atol=1e-10)


def test_zeros_ones_and_generator_reproducibility():
    w = nn.Parameter(mg.randn(3, 4))
    assert init.zeros_(w) is w and not w.numpy().any()
    np.testing.assert_array_equal(init.ones_(w).numpy(), 1.0)
    a = init.kaiming_uniform_(nn.Parameter(mg.zeros(5, 6)), generator=mg.random.Generator(9))
    b = init.kaiming_uniform_(nn.Parameter(mg.zeros(5, 6)), generator=mg.random.Generator(9))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    mg.random.seed(11)
    c = nn.Linear(6, 5).weight.numpy()
    mg.random.seed(11)
    np.testing.assert_array_equal(nn.Linear(6, 5).weight.numpy(), c)


def test_init_writes_values_without_recording_a_graph():
    w = nn.Parameter(mg.zeros(4, 4))
    init.xavier_normal_(w)
    assert w.is_leaf and w.requires_grad and w.dtype == np.float32


def test_gains_and_fans():
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.fan_in_and_fan_out(mg.zeros(8, 3, 5, 5)) == (75, 200)
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.kaiming_uniform_(nn.Parameter(mg.zeros(5)))


def test_module_init_matches_torch_defaults_in_distribution():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    mg.random.seed(0)
    for ours, theirs in ((nn.Linear(300, 200), torch.nn.Linear(300, 200)),
                         (nn.Conv2d(8, 64, 3), torch.nn.Conv2d(8, 64, 3)),
                         (nn.ConvTranspose2d(64, 8, 4), torch.nn.ConvTranspose2d(64, 8, 4))):
        w, wt = ours.weight.numpy(), theirs.weight.detach().numpy()
        assert w.shape == wt.shape and ours.bias.shape == tuple(theirs.bias.shape)
        assert abs(np.abs(w).max() - np.abs(wt).max()) < 0.01 * np.abs(wt).max()
        assert abs(w.std() - wt.std()) < 0.05 * wt.std()
        # torch draws the bias from the same +-1/sqrt(fan_in) as the weight
        assert np.abs(ours.bias.numpy()).max() <= np.abs(wt).max() * 1.01
    bn, bnt = nn.BatchNorm2d(5), torch.nn.BatchNorm2d(5)
    for name, value in bn.state_dict().items():
        np.testing.assert_array_equal(value, bnt.state_dict()[name].numpy(), err_msg=name)


@pytest.mark.parametrize("make", [lambda g: nn.Linear(5, 3, generator=g),
                                  lambda g: nn.Conv2d(2, 3, 3, generator=g),
                                  lambda g: nn.ConvTranspose2d(2, 3, 4, generator=g),
                                  lambda g: nn.Conv1d(2, 3, 2, generator=g),
                                  lambda g: nn.Embedding(4, 3, generator=g)])
def test_layers_draw_their_initial_weights_from_the_given_generator(make):
    """The same generator seed gives the same weights; the default generator is not used."""
    mg.random.seed(1)
    before = mg.random.default_generator.rng.bit_generator.state
    a, b = make(mg.random.Generator(4)), make(mg.random.Generator(4))
    assert mg.random.default_generator.rng.bit_generator.state == before
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
