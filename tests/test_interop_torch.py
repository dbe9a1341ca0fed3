"""The PyTorch bridge: to_torch / from_torch against PyTorch's own forward pass, bitwise round trips in
float64, and every refusal in one line (issue 24)."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from backprop import AvgPool2D, BackpropError, Conv2D, Dense, Flatten, MaxPool2D, Network  # noqa: E402
from backprop.interop import from_torch, to_torch  # noqa: E402
from backprop.interop.torch_bridge import exp_module  # noqa: E402

ACTS = ["identity", "relu", "tanh", "sigmoid", "leaky_relu", "softmax", "exp"]


def conv_net(dtype=np.float64):
    return Network([
        Conv2D(2, 3, 3, padding=1, activation="relu", seed=0, dtype=dtype),
        MaxPool2D(2),
        Conv2D(3, 4, (2, 3), stride=(1, 2), padding=(1, 0), activation="sigmoid", seed=1, dtype=dtype),
        AvgPool2D(2, stride=1),
        Flatten(),
        Dense(16, 5, activation={"name": "leaky_relu", "negative_slope": 0.2}, seed=2, dtype=dtype),
        Dense(5, 3, activation="exp", seed=3, dtype=dtype),
    ], input_shape=(2, 8, 12))


def torch_out(module, X):
    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(X))).numpy()


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("activation", ACTS)
def test_to_torch_computes_the_same(activation, dtype):
    # Our outputs and PyTorch's for the converted Sequential agree to 1e-12 (float64) / 1e-6 (float32).
    rng = np.random.default_rng(ACTS.index(activation))
    hidden = "tanh" if activation in ("softmax", "exp") else activation
    out = activation if activation in ("softmax", "exp") else "identity"
    net = Network.from_sizes([6, 9, 7, 4], activation=hidden, output_activation=out, weight_init="glorot",
                             bias_init="normal", seed=1, dtype=dtype)
    module = to_torch(net)
    assert next(module.parameters()).dtype == (torch.float64 if dtype == np.float64 else torch.float32)
    X = rng.standard_normal((1000, 6)).astype(dtype)
    assert rel(net.predict(X), torch_out(module, X)) <= (1e-12 if dtype == np.float64 else 1e-6)


def test_conv_network_to_torch_and_back_is_exact():
    # A conv net -> nn.Sequential -> Network: the same weights bit for bit and bitwise equal outputs;
    # PyTorch's forward agrees with ours to 1e-12.
    net = conv_net()
    module = to_torch(net)
    assert [type(m).__name__ for m in module] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "Sigmoid", "AvgPool2d",
                                                  "Flatten", "Linear", "LeakyReLU", "Linear", "BackpropExp"]
    X = np.random.default_rng(0).standard_normal((50, 2, 8, 12))
    assert rel(net.predict(X), torch_out(module, X)) <= 1e-12
    back = from_torch(module, (2, 8, 12))
    assert [repr(layer) for layer in back.layers] == [repr(layer) for layer in net.layers]
    for (name, p), (_, q) in zip(net.named_parameters(), back.named_parameters()):
        assert p.dtype == q.dtype and np.array_equal(p, q), name
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_torch_to_network_and_back_is_exact():
    # A Sequential built and initialised by PyTorch -> Network -> Sequential: the state dict bit for bit;
    # our forward agrees with PyTorch's to 1e-12 (PyTorch is the oracle here).
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(4, 2, 2, stride=2),
                           nn.Identity(), nn.MaxPool2d(2, stride=1), nn.Flatten(), nn.Linear(2, 5), nn.ReLU(),
                           nn.Linear(5, 3, bias=False), nn.Softmax(dim=1)).double()
    net = from_torch(module, (1, 8, 8))
    X = np.random.default_rng(1).standard_normal((20, 1, 8, 8))
    assert rel(torch_out(module, X), net.predict(X)) <= 1e-12
    again = to_torch(net).state_dict()
    original = {k: v for k, v in module.state_dict().items()}
    assert [tuple(v.shape) for v in again.values()] == [tuple(v.shape) for v in original.values()]
    for (k, a), b in zip(again.items(), original.values()):
        assert torch.equal(a, b), k


def test_dense_only_infers_input_shape_and_keeps_frozen_bias():
    # input_shape may be left out before a Linear; a bias with requires_grad=False is a frozen bias.
    net = Network([Dense(3, 2, activation="sigmoid", trainable_bias=False, bias_init=0.5, seed=0)])
    module = to_torch(net)
    assert module[0].bias.requires_grad is False
    back = from_torch(module)
    assert back.input_shape == (3,) and back.layers[0].frozen == {"b"}
    assert from_torch(nn.Sequential(nn.Linear(3, 2).float())).dtype == np.float32


@pytest.mark.parametrize("module, message", [
    (lambda: nn.Linear(3, 2), r"^`module` must be a torch.nn.Sequential of Linear, .*; got Linear$"),
    (lambda: nn.Sequential(nn.Linear(3, 2), nn.Dropout()), r"^cannot import module 1 \(Dropout\) from PyTorch"),
    (lambda: nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), r"module 1 \(BatchNorm1d\)"),
    (lambda: nn.Sequential(nn.Sequential(nn.Linear(3, 2))), r"module 0 \(Sequential\)"),
    (lambda: nn.Sequential(nn.ReLU(), nn.Linear(3, 2)), r"module 0 \(ReLU\): an activation must come right after"),
    (lambda: nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Tanh()), r"module 2 \(Tanh\): an activation must"),
    (lambda: nn.Sequential(nn.Conv2d(2, 2, 3, groups=2)), r"module 0 \(Conv2d\): only groups=1"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2)), r"only groups=1, dilation=1"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding="same")), r"integer zero padding"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")), r"integer zero padding"),
    (lambda: nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), r"module 0 \(MaxPool2d\): only pools without"),
    (lambda: nn.Sequential(nn.AvgPool2d(2, padding=1)), r"module 0 \(AvgPool2d\): only pools without"),
    (lambda: nn.Sequential(nn.Flatten(0)), r"only Flatten\(start_dim=1, end_dim=-1\)"),
    (lambda: nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=0)), r"Softmax must be over the last axis"),
    (lambda: nn.Sequential(nn.Linear(3, 2).half()), r"float32 or float64 weights"),
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)), r"layer 1 has 4 outputs but layer 2 expects 5"),
    (lambda: nn.Sequential(), r"holds no Linear"),
])
def test_refusals_are_one_line(module, message):
    # Anything the engine cannot represent is refused by name, in one line.
    with pytest.raises(BackpropError, match=message) as err:
        from_torch(module(), (1, 6, 6) if "Conv" in message or "pool" in message else None)
    assert "\n" not in str(err.value)


def test_wrong_input_shape_is_one_line():
    # A Conv2d given an input shape with the wrong channel count, and a Linear that does not fit the
    # flattened conv output: one line each.
    module = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(8, 1)).double()
    with pytest.raises(BackpropError, match=r"expects 3 input channel"):
        from_torch(module, (1, 4, 4))
    with pytest.raises(BackpropError, match=r"layer 3 \(Dense\(8, 1.*\) does not fit"):
        from_torch(module, (3, 5, 5))


def test_state_dict_files(tmp_path):
    # Weights from a .pt file (torch.load weights_only) or a .safetensors file replace the module's own.
    from safetensors.torch import save_file

    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    trained = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    torch.save(trained.state_dict(), tmp_path / "w.pt")
    save_file(trained.state_dict(), str(tmp_path / "w.safetensors"))
    X = np.random.default_rng(0).standard_normal((5, 4))
    for name in ("w.pt", "w.safetensors"):
        net = from_torch(module, state_dict=tmp_path / name)
        assert rel(torch_out(trained, X), net.predict(X)) <= 1e-12
    net = from_torch(module, state_dict=trained.state_dict())
    assert np.array_equal(net.parameters()[0], trained[0].weight.detach().numpy().T)


def test_damaged_state_dicts_are_one_line_and_run_no_code(tmp_path):
    # Garbage, a pickle that would call open() when unpickled, a non-tensor entry, wrong names and wrong
    # shapes: one line each, and the hostile file's code never runs.
    module = nn.Sequential(nn.Linear(4, 3)).double()
    marker = tmp_path / "pwned"

    class Hostile:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "hostile.pt").write_bytes(pickle.dumps({"0.weight": Hostile()}))
    (tmp_path / "garbage.pt").write_bytes(b"\x80\x04 not a checkpoint" * 20)
    (tmp_path / "garbage.safetensors").write_bytes(b"\xff" * 64)
    cases = [
        (tmp_path / "hostile.pt", r"torch.load\(weights_only=True\), which runs no code, can read"),
        (tmp_path / "garbage.pt", r"is not a weights file"),
        (tmp_path / "garbage.safetensors", r"safetensors can read"),
        (tmp_path / "absent.pt", r"does not exist"),
        ([1, 2], r"must map parameter names to tensors; got"),
        ({"0.weight": torch.zeros(3, 4, dtype=torch.float64)}, r"missing \['0.bias'\], unexpected nothing"),
        ({"0.weight": torch.zeros(4, 3), "0.bias": torch.zeros(3)}, r"`0.weight` must have shape \(3, 4\); got \(4, 3\)"),
        ({"0.weight": torch.zeros(3, 4, dtype=torch.int64), "0.bias": torch.zeros(3)}, r"must be a float tensor"),
        ({"0.weight": torch.full((3, 4), float("nan")), "0.bias": torch.zeros(3)}, r"NaN|finite"),
    ]
    for source, message in cases:
        with pytest.raises(BackpropError, match=message) as err:
            from_torch(module, state_dict=source)
        assert "\n" not in str(err.value), source
    assert not marker.exists()


def test_exp_module_matches_our_cap():
    # BackpropExp is e^min(z, 80), like the engine's exp output.
    z = torch.tensor([-1.0, 0.0, 3.0, 80.0, 500.0], dtype=torch.float64)
    np.testing.assert_array_equal(exp_module()(z).numpy(), np.exp(np.minimum(z.numpy(), 80.0)))


def test_missing_torch_is_one_line(monkeypatch):
    # Without PyTorch: one line saying what to install.
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(BackpropError, match=r"^PyTorch is needed for to_torch: pip install backprop\[torch\]$"):
        to_torch(Network.from_sizes([2, 1], seed=0))
