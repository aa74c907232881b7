import torch

from nvfilter.config import TrainConfig
from nvfilter.metrics import psnr_from_mse
from nvfilter.model import Siren
from nvfilter.render import reconstruction_mse
from nvfilter.train import fit, total_steps


def gradient_video(frames=4, height=12, width=16):
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    video = torch.stack([torch.stack([x, y, (x + y + k / frames) / 3], -1) for k in range(frames)])
    return (video * 255).round().to(torch.uint8)


def train_once(seed, **overrides):
    torch.manual_seed(seed)
    model = Siren(hidden_features=32, hidden_layers=2)
    config = TrainConfig(
        **{"epochs": 300, "batch_size": 512, "lr": 1e-3, "seed": seed, **overrides}
    )
    result = fit(model, gradient_video(), config)
    return model, result


def test_psnr_of_unit_range_errors():
    assert psnr_from_mse(0.01, peak=1.0) == 20.0
    assert psnr_from_mse(1e-4, peak=1.0) == 40.0


def test_epochs_set_the_step_count():
    config = TrainConfig(epochs=3, batch_size=100)
    assert total_steps(768, config) == 24  # 3 * 768 / 100, rounded up


def test_fit_learns_and_reports_steps():
    model, result = train_once(0)
    assert result.steps == total_steps(4 * 12 * 16, TrainConfig(epochs=300, batch_size=512))
    assert result.stopped_by == "epochs"
    assert psnr_from_mse(reconstruction_mse(model, gradient_video()), peak=1.0) > 30


def test_same_seed_same_result_on_cpu():
    a, _ = train_once(3)
    b, _ = train_once(3)
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(ta, tb), name
    c, _ = train_once(4)
    assert not torch.equal(a.final.weight, c.final.weight)


def test_time_budget_and_target_psnr_stop_early():
    _, result = train_once(0, epochs=10**6, time_budget=0.5)
    assert result.stopped_by == "time-budget" and 0.5 <= result.seconds < 5
    _, result = train_once(0, epochs=10**6, target_psnr=20.0)
    assert result.stopped_by == "target-psnr"


def test_bfloat16_training_learns_and_keeps_float32_weights():
    model, result = train_once(0, precision="bfloat16")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert psnr_from_mse(reconstruction_mse(model, gradient_video()), peak=1.0) > 28
