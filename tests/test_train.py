import torch

from nvfilter.config import TrainConfig
from nvfilter.encode.train import Trainer, compile_pays, fit, total_steps
from nvfilter.metrics import psnr_from_mse
from nvfilter.models.reads import reconstruction_mse
from nvfilter.models.siren import Siren


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


def test_chunked_backward_gives_the_whole_batch_gradient():
    def gradients(chunk_rows):
        torch.manual_seed(0)
        model = Siren(hidden_features=32, hidden_layers=2)
        model.cpu_chunk_rows = lambda: chunk_rows  # type: ignore[method-assign]
        model.register_forward_hook(lambda module, args, out: passes.append(len(args[0])))
        trainer = Trainer(model, gradient_video(), TrainConfig(batch_size=500))
        coords = torch.rand(500, 3) * 2 - 1
        target = torch.rand(500, 3)
        loss = trainer._backward(coords, target)
        return loss, [p.grad.clone() for p in model.parameters()]

    passes: list[int] = []
    whole_loss, whole = gradients(None)
    assert passes == [500]
    passes.clear()
    chunked_loss, chunked = gradients(128)
    assert passes == [128, 128, 128, 116]
    assert torch.allclose(whole_loss, chunked_loss, rtol=1e-6)
    for a, b in zip(whole, chunked, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)


def test_siren_trains_in_cache_sized_chunks_on_cpu():
    assert Siren(hidden_features=256).cpu_chunk_rows() == 4096
    assert Siren(hidden_features=32).cpu_chunk_rows() == 32768


def test_precision_auto_is_float32_on_cpu_and_tf32_needs_cuda():
    import pytest

    from nvfilter.encode.train import CUDA_AUTO_PRECISION, resolve_precision
    from nvfilter.errors import OptionError

    assert resolve_precision("auto", "cpu", "siren") == "float32"
    assert resolve_precision("auto", "cuda", "siren") == CUDA_AUTO_PRECISION["siren"]
    assert resolve_precision("auto", "cuda", "hybrid") == "float32"
    assert resolve_precision("bfloat16", "cpu", "hybrid") == "bfloat16"
    assert resolve_precision("tf32", "cuda", "siren") == "tf32"
    with pytest.raises(OptionError, match="tf32 is for NVIDIA GPUs"):
        resolve_precision("tf32", "cpu", "siren")


def test_reading_the_loss_every_few_steps_changes_nothing_but_when_it_is_read():
    """A GPU reads the loss back every GPU_SYNC_EVERY steps; the weights, the running PSNR and
    the target-PSNR stop must come out as with a read every step."""

    def trained(sync_every, **overrides):
        torch.manual_seed(0)
        model = Siren(hidden_features=32, hidden_layers=2)
        config = TrainConfig(epochs=40, batch_size=512, lr=1e-3, **overrides)
        trainer = Trainer(model, gradient_video(), config)
        trainer.sync_every = sync_every
        reports = []
        result = trainer.run(on_progress=reports.append, report_every=1e9)
        return model, trainer, result, reports

    a, ta, ra, _ = trained(1)
    b, tb, rb, reports = trained(7)
    assert ra.steps == rb.steps == 60
    assert ta.smoothed_mse == tb.smoothed_mse
    assert torch.equal(a.final.weight, b.final.weight)
    assert [r.step for r in reports] == [1, 60]  # first report, then the last step
    # the target is checked at reads only: the stop comes at the first read past it
    _, _, every, _ = trained(1, target_psnr=15.0)
    _, _, sparse, _ = trained(7, target_psnr=15.0)
    assert sparse.stopped_by == every.stopped_by == "target-psnr"
    assert sparse.steps == 7 * -(-every.steps // 7)


def test_compiled_siren_trains_like_the_fused_one():
    """--compile trains SIREN through torch.compile of its plain form: the same function, so
    the same loss and gradients up to rounding, and it learns."""
    torch.manual_seed(0)
    model = Siren(hidden_features=32, hidden_layers=2)
    config = TrainConfig(epochs=1, batch_size=512, lr=1e-3, compile=True)
    trainer = Trainer(model, gradient_video(), config)
    assert trainer.compile_note is None and trainer.network is not model
    assert all(p.grad is None for p in model.parameters())  # the trial pass leaves no gradient
    coords = torch.rand(512, 3) * 2 - 1
    target = torch.rand(512, 3)
    compiled_loss = trainer._backward(coords, target)
    compiled = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    trainer.network = model
    fused_loss = trainer._backward(coords, target)
    assert torch.allclose(compiled_loss, fused_loss, rtol=1e-5)
    for a, p in zip(compiled, model.parameters(), strict=True):
        assert torch.allclose(a, p.grad, rtol=1e-3, atol=1e-6)


def test_compiling_is_on_by_default_where_it_pays():
    from nvfilter.models.planes import PlaneField

    siren = Siren()  # 256 x 5: about 2 MFLOP per pixel pass, so 6e6 passes make 120 s
    long, short = 1e7, 1e6
    assert compile_pays(siren, "cpu", long, None)
    assert not compile_pays(siren, "cpu", short, None)
    assert not compile_pays(siren, "cpu", long, 60.0)  # a short time budget
    assert compile_pays(siren, "cpu", long, 600.0)
    assert not compile_pays(siren, "cuda", long, None)  # left to the flag
    assert not compile_pays(PlaneField(16, 12, 4, 2, 2, 8), "cpu", 1e12, None)


def test_compile_falls_back_with_a_note(monkeypatch):
    from nvfilter.models.planes import PlaneField

    hybrid = Trainer(PlaneField(16, 12, 4, 2, 2, 8), gradient_video(), TrainConfig(compile=True))
    assert (
        hybrid.network is hybrid.model and "hybrid model trains uncompiled" in hybrid.compile_note
    )

    def broken(function):
        def fails(*args):
            raise RuntimeError("no C compiler here\nmore detail")

        return fails

    monkeypatch.setattr(torch, "compile", broken)
    torch.manual_seed(0)
    model = Siren(hidden_features=32, hidden_layers=2)
    trainer = Trainer(model, gradient_video(), TrainConfig(epochs=50, batch_size=512, compile=True))
    assert trainer.network is model and not trainer.config.compile  # what the .nvw records
    assert trainer.compile_note == (
        "note: torch.compile failed (RuntimeError: no C compiler here); training uncompiled"
    )
    assert trainer.run().steps == 75
