"""The CUDA paths: training, rendering and the command line on an NVIDIA GPU.

Skipped where torch sees no CUDA device (CI has none); run on a GPU machine with
``python -m pytest -q tests/test_cuda.py``.
"""

import numpy as np
import pytest
import torch
from conftest import run
from test_train import gradient_video

from nvfilter.config import TrainConfig
from nvfilter.coords import frame_time
from nvfilter.encode.train import Trainer
from nvfilter.metrics import psnr_from_mse
from nvfilter.models.planes import PlaneField
from nvfilter.models.reads import reconstruction_mse, render_frame
from nvfilter.models.siren import Siren

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


@pytest.mark.parametrize("precision", ["float32", "tf32", "bfloat16", "auto"])
def test_siren_learns_on_cuda_in_each_precision(precision):
    torch.manual_seed(0)
    model = Siren(hidden_features=32, hidden_layers=2)
    config = TrainConfig(epochs=300, batch_size=512, lr=1e-3, device="cuda", precision=precision)
    result = Trainer(model, gradient_video(), config).run()
    assert result.steps == 450 and result.stopped_by == "epochs"
    assert all(p.device.type == "cuda" and p.dtype == torch.float32 for p in model.parameters())
    assert psnr_from_mse(reconstruction_mse(model, gradient_video()), peak=1.0) > 28


def test_hybrid_learns_on_cuda_and_reads_its_loss_in_batches():
    torch.manual_seed(0)
    model = PlaneField(16, 12, 4, channels=4, levels=2, head_features=16)
    trainer = Trainer(
        model, gradient_video(), TrainConfig(epochs=400, batch_size=256, lr=3e-3, device="cuda")
    )
    assert trainer.sync_every > 1
    reports = []
    result = trainer.run(on_progress=reports.append, report_every=1e9)
    assert result.steps == 1200 and reports[-1].step == 1200
    assert trainer.smoothed_mse is not None and trainer.smoothed_mse < 1e-3
    assert psnr_from_mse(reconstruction_mse(model, gradient_video()), peak=1.0) > 30


def test_siren_trains_in_bfloat16_on_cuda_by_default(clips, tmp_path):
    result = run("encode", clips["smooth"], tmp_path / "s.nvw", "--model", "siren", "--epochs", "5")
    assert result.exit_code == 0, result.stderr
    assert "on cuda in bfloat16" in result.stderr


@pytest.mark.parametrize("kind", ["siren", "hybrid", "hybrid-footprint"])
def test_cuda_render_matches_cpu_render(kind):
    torch.manual_seed(0)
    if kind == "siren":
        model = Siren(32, 2)
    else:
        model = PlaneField(16, 12, 4, channels=4, levels=2, footprint=kind == "hybrid-footprint")
    model.eval()
    on_cpu = render_frame(model, 40, 30, 0.1)
    on_gpu = render_frame(model.to("cuda"), 40, 30, 0.1)
    assert np.abs(on_cpu.astype(int) - on_gpu.astype(int)).max() <= 1


@pytest.mark.parametrize("follow_camera", [False, True])
def test_cuda_tiles_render_matches_cpu_render(follow_camera):
    """A tiles network, kept in its frame or cut from its canvas (test_camera's pan), reads
    the same on the GPU, at a frame and between two."""
    from test_camera import fitted, panning_video

    model = fitted(panning_video(), follow_camera=follow_camera)
    assert (model.canvas is not None) == follow_camera
    for t in (frame_time(3, 9), frame_time(3.5, 9)):
        model.cpu().forget_render_cache()
        on_cpu = render_frame(model, 80, 48, t)
        model.to("cuda").forget_render_cache()  # a read keeps its last frame
        on_gpu = render_frame(model, 80, 48, t)
        assert np.abs(on_cpu.astype(int) - on_gpu.astype(int)).max() <= 1


def test_encode_and_decode_on_cuda_through_the_cli(clips, tmp_path):
    nvw_path = tmp_path / "c.nvw"
    result = run("encode", clips["smooth"], nvw_path, "--device", "cuda", "--epochs", "20")
    assert result.exit_code == 0, result.stderr
    assert "on cuda in float32" in result.stderr and "batches of 65536" in result.stderr
    result = run(
        "decode", nvw_path, tmp_path / "o.mp4", "--device", "cuda", "--preset", "slowmo-2x"
    )
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "o.mp4").stat().st_size > 0


def test_compiled_siren_trains_on_cuda():
    torch.manual_seed(0)
    model = Siren(hidden_features=32, hidden_layers=2)
    config = TrainConfig(epochs=300, batch_size=512, lr=1e-3, device="cuda", compile=True)
    trainer = Trainer(model, gradient_video(), config)
    assert trainer.compile_note is None and trainer.network is not model
    trainer.run()
    assert psnr_from_mse(reconstruction_mse(model, gradient_video()), peak=1.0) > 28
