"""``benchmarks/gpu_suite.py``: the smoke run covers every part with numbers and no errors (and the batched
pre-tokenisation ids equal batch 1's); without CUDA the full run says so and stops; on a GPU a short subset runs
at full size. Figures are not asserted (a shared machine's timings are noise), only that they exist."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from .conftest import REPO, benchmark

SCRIPT = REPO / "benchmarks/gpu_suite.py"
PARTS = ["vq_train", "pretok", "lm", "codecs", "text", "llm_generate_100m", "llm_generate_tiny", "stream_cuda",
         "llm_packed", "lm_hf_bf16"]


def _suite(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def _assert_numbers(res: dict, names: list[str]) -> None:
    assert list(res["parts"]) == names
    for name, part in res["parts"].items():
        assert part["ok"], f"{name}: {part.get('error')}"
        rows = part["result"]["rows"]
        assert rows, name
        for r in rows:
            assert isinstance(r["rate"], float) and math.isfinite(r["rate"]) and r["rate"] > 0, (name, r)
            assert r["ratio"] is None or (math.isfinite(r["ratio"]) and r["ratio"] > 0), (name, r)


def _ids_checks(res: dict) -> list[dict]:
    checks = [c for c in res["parts"]["pretok"]["result"]["checks"] if "equal batch 1" in c["name"]]
    assert {c["name"] for c in checks} == {f"{k} fp32 ids at batch {b} equal batch 1" for k in ("image", "audio")
                                           for b in (32, 64)}
    return checks


@pytest.mark.slow
def test_smoke_run_has_every_part_with_numbers(tmp_path):
    out = tmp_path / "suite.json"
    proc = _suite("--smoke", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["smoke"] and res["device_type"] == "cpu" and res["device"]
    _assert_numbers(res, PARTS)
    assert all(c["passed"] for c in _ids_checks(res))
    assert res["seconds"] < 180  # about a minute on 2 cores; the aim is under 2 minutes
    md = out.with_suffix(".md").read_text()
    assert "| part | measure | setting | rate |" in md and "CPU smoke run" in md
    assert all(f"| {name} |" in md for name in PARTS)


def test_only_runs_a_subset_and_refuses_unknown_parts(tmp_path):
    proc = _suite("--smoke", "--only", "nope,text", timeout=120)
    assert proc.returncode != 0 and "unknown part(s) ['nope']" in proc.stderr and "vq_train" in proc.stderr
    out = tmp_path / "t.json"
    proc = _suite("--smoke", "--only", "text", "--out", str(out), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    _assert_numbers(res, ["text"])
    assert res["parts"]["text"]["result"]["checks"][0]["passed"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no CUDA device")
def test_without_cuda_the_full_run_says_so(tmp_path):
    proc = _suite("--out", str(tmp_path / "x.json"), timeout=120)
    assert proc.returncode != 0 and "no CUDA device" in proc.stderr and "--smoke" in proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_report_marks_failures_and_goals_not_in_force():
    common, markdown = benchmark("gpu_parts.common"), benchmark("gpu_parts.report").markdown
    check, row = common.check, common.row
    res = {"device": "cpu", "smoke": True, "torch": "x", "transformers": "y", "started": "now", "seconds": 1.0,
           "parts": {"a": {"ok": True, "seconds": 0.5, "result": {
               "rows": [row("m", "fast", 2000.0, "docs/s", "slow", 12.5, peak_mib=3, mfu=0.41)],
               "checks": [check("aim", False, "1.5x", applies=False), check("ids", True, "ok")]}},
               "b": {"ok": False, "seconds": 0.1, "error": "Traceback...\nRuntimeError: broke | here\n"}}}
    md = markdown(res)
    assert "| a | m | fast | 2,000 | docs/s | slow | 12.50 | peak 3 MiB; MFU 41.0% |" in md
    assert "| a | aim | not met (not a goal in this run) | 1.5x |" in md and "| a | ids | pass | ok |" in md
    assert "| b | 0.1 | error: RuntimeError: broke / here |" in md


@pytest.mark.gpu
def test_full_size_subset_on_cuda(tmp_path):
    out = tmp_path / "gpu.json"
    proc = _suite("--only", "pretok,text", "--rounds", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["device_type"] == "cuda" and not res["smoke"]
    _assert_numbers(res, ["pretok", "text"])
    assert all(c["passed"] for c in _ids_checks(res))
    assert any(r["setting"] == "bf16 batch 64" for r in res["parts"]["pretok"]["result"]["rows"])
