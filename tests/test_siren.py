import math

import pytest
import torch

from nvfilter.models import build_model
from nvfilter.models.siren import SineLayer, Siren, siren_weight_bound


def test_first_layer_bound_is_one_over_fan_in():
    torch.manual_seed(0)
    layer = SineLayer(3, 4096, omega_0=30.0, is_first=True)
    w = layer.linear.weight
    assert w.abs().max() <= 1 / 3
    # uniform over the whole range, not a narrower one
    assert w.abs().max() > 0.99 / 3
    assert abs(w.std().item() - (1 / 3) / math.sqrt(3)) < 0.01


@pytest.mark.parametrize("fan_in,omega", [(256, 30.0), (64, 10.0)])
def test_hidden_layer_bound_is_sqrt6_over_n_over_omega(fan_in, omega):
    torch.manual_seed(0)
    layer = SineLayer(fan_in, 512, omega_0=omega, is_first=False)
    bound = math.sqrt(6 / fan_in) / omega
    w = layer.linear.weight
    assert siren_weight_bound(fan_in, omega, False) == pytest.approx(bound)
    assert w.abs().max() <= bound
    assert w.abs().max() > 0.99 * bound


def test_sine_layer_computes_sin_of_omega_times_affine():
    layer = SineLayer(3, 8, omega_0=30.0, is_first=True)
    x = torch.rand(5, 3) * 2 - 1
    expected = torch.sin(30.0 * (x @ layer.linear.weight.T + layer.linear.bias))
    assert torch.allclose(layer(x), expected, atol=1e-6)


def test_siren_structure_and_final_layer_init():
    model = Siren(hidden_features=32, hidden_layers=5, omega_0=30.0)
    sines = [m for m in model.net if isinstance(m, SineLayer)]
    assert len(sines) == 6  # first layer + 5 hidden layers
    assert sines[0].is_first and not any(s.is_first for s in sines[1:])
    assert model.final.weight.abs().max() <= math.sqrt(6 / 32) / 30.0
    out = model(torch.rand(100, 3) * 2 - 1)
    assert out.shape == (100, 3)
    assert out.min() >= 0 and out.max() <= 1  # sigmoid


def test_architecture_rebuilds_the_same_network():
    model = Siren(hidden_features=16, hidden_layers=2, omega_0=20.0, omega_0_initial=25.0)
    rebuilt = build_model(model.architecture())
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(10, 3)
    assert torch.equal(model(x), rebuilt(x))
    assert rebuilt.architecture() == model.architecture()


def test_build_model_rejects_unknown_type():
    with pytest.raises(ValueError):
        build_model({"type": "nope"})


def test_fused_sine_layer_matches_plain_autograd():
    torch.manual_seed(0)
    model = Siren(hidden_features=32, hidden_layers=3)
    coords = torch.rand(256, 3) * 2 - 1
    model(coords).square().mean().backward()  # fused path (grad enabled)
    fused = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    out = coords
    for layer in model.net:  # the same network written with plain torch ops
        out = torch.sin(
            layer.omega_0 * torch.nn.functional.linear(out, layer.linear.weight, layer.linear.bias)
        )
    torch.sigmoid(model.final(out)).square().mean().backward()
    for a, p in zip(fused, model.parameters(), strict=True):
        assert torch.allclose(a, p.grad, rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        assert torch.equal(model(coords), torch.sigmoid(model.final(out)).detach())


def test_fused_sine_layer_under_bfloat16_autocast_matches_plain_autocast():
    torch.manual_seed(0)
    model = Siren(hidden_features=32, hidden_layers=3)
    coords = torch.rand(256, 3) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused_out = model(coords)
    fused_out.float().square().mean().backward()
    fused = [p.grad.clone() for p in model.parameters()]
    assert all(g.dtype == torch.float32 for g in fused)
    model.zero_grad()
    with torch.autocast(
        "cpu", dtype=torch.bfloat16
    ):  # nn.Linear + torch.sin, as autocast runs them
        out = coords
        for layer in model.net:
            out = torch.sin(layer.omega_0 * layer.linear(out))
        plain_out = torch.sigmoid(model.final(out))
    plain_out.float().square().mean().backward()
    assert fused_out.dtype == plain_out.dtype
    assert torch.allclose(fused_out.float(), plain_out.float(), atol=2e-2)
    for a, p in zip(fused, model.parameters(), strict=True):
        assert torch.allclose(a, p.grad, rtol=0.1, atol=2e-3 * p.grad.abs().max().item())
