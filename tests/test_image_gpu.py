"""``experiment=image_gpu``: image_small's f8 recipe scaled to one GPU (issue 25, item 6). No GPU was lent to the
session that wrote it, so here: its settings, the clear refusal without CUDA, a few steps of the same recipe on
the CPU (with the device and precision overridden), and on a CUDA machine a short bf16 run."""

from __future__ import annotations

import pytest
import torch

from modalities.tasks import run_task

TINY = ["trainer.max_steps=3", "task.batch_size=2", "trainer.num_workers=0", "task.baseline=false",
        "task.val_size=64", "trainer.val_every=3", "trainer.ckpt_every=3", "trainer.warmup_steps=1",
        "trainer.tensorboard=false"]


def test_image_gpu_is_image_small_on_a_larger_model_in_bf16(compose):
    gpu, small = compose(["experiment=image_gpu"]), compose(["experiment=image_small"])
    assert gpu.trainer.device == "cuda" and gpu.trainer.precision == "bf16"
    assert gpu.quantizer.codebook_size == small.quantizer.codebook_size == 256  # the same 0.125 bits per pixel
    assert gpu.quantizer.use_cosine_sim and gpu.tokenizer.image.norm == "pixel"
    assert list(gpu.tokenizer.image.channels) == [64, 128, 128, 256]  # tokenizer/image=f8: downsample 8
    for key in ("zoom", "colour", "val_fraction", "refit_crops"):  # image_small's photographs, split and jitter
        assert gpu.task[key] == small.task[key], key
    assert (gpu.task.batch_size, gpu.task.crop_size, gpu.trainer.max_steps) == (32, 128, 12000)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where there is no CUDA device")
def test_image_gpu_without_cuda_says_so(compose, tmp_path):
    with pytest.raises(RuntimeError, match=r"trainer.device=cuda but no CUDA device"):
        run_task(compose(["experiment=image_gpu", *TINY]), tmp_path)


def test_image_gpu_recipe_trains_on_the_cpu_when_told_to(compose, tmp_path):
    """The recipe's model, crops and lookup, three steps on the CPU in fp32: a tokenizer of 8x8 patches comes out."""
    m = run_task(compose(["experiment=image_gpu", "trainer.device=cpu", "trainer.precision=fp32", *TINY]), tmp_path)
    assert m["steps"] == 3 and m["downsample"] == 8 and m["bits_per_pixel"] == 0.125
    assert (tmp_path / "tokenizer" / "image").is_dir()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_image_gpu_recipe_trains_in_bf16_on_cuda(compose, tmp_path):
    m = run_task(compose(["experiment=image_gpu", "trainer.max_steps=50", "trainer.val_every=50",
                          "trainer.ckpt_every=50", "task.baseline=false", "trainer.tensorboard=false"]), tmp_path)
    assert m["steps"] == 50 and m["val_psnr"] > 12.0, m
