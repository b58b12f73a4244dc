"""Benchmark scripts run at a tiny size and write their JSON (figures are not checked: machines are noisy)."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import REPO


def test_text_throughput_script(tmp_path):
    out = tmp_path / "text.json"
    proc = subprocess.run([sys.executable, "benchmarks/text_throughput.py", "--vocab-size", "512", "--mb", "0.05",
                           "--repeat", "1", "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert {r["mode"] for r in res["rows"]} == {"single", "batched"}
    assert all(r["mmtok_tok_s"] > 0 and r["ratio_vs_hf"] > 0 for r in res["rows"])
    assert 1.5 < res["bytes_per_token_heldout"] < 5


def test_image_throughput_script(tmp_path):
    out = tmp_path / "img.json"
    proc = subprocess.run([sys.executable, "benchmarks/image_throughput.py", "--kinds", "fsq", "--batch", "2",
                           "--size", "64", "--repeat", "1", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(out.read_text())["rows"]
    assert row["quantizer"] == "fsq" and row["codebook_size"] == 1000
    assert row["encode_img_s"] > 0 and row["decode_img_s"] > 0 and row["kmeans_encode_img_s"] > 0


def test_audio_throughput_script(tmp_path):
    out = tmp_path / "audio.json"
    proc = subprocess.run([sys.executable, "benchmarks/audio_throughput.py", "--batch", "2", "--seconds", "1",
                           "--k", "20", "--repeat", "1", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert res["tokens_per_second"] == 25 and res["bits_per_second"] == 400 and len(res["rows"]) == 6
    assert all(r["rtf"] > 0 for r in res["rows"]) and res["encode_ratio_vs_kmeans"] > 0


def test_pretokenize_throughput_script(tmp_path):
    out = tmp_path / "pretok.json"
    proc = subprocess.run([sys.executable, "benchmarks/pretokenize_throughput.py", "--copies", "1", "--workers", "0",
                           "2", "--image-size", "64", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert [r["workers"] for r in res["rows"]] == [0, 2] and res["rows"][0]["ratio_vs_baseline"] == 1.0
    assert res["rows"][0]["documents"] == 108 and res["rows"][0]["tokens"] == res["rows"][1]["tokens"]


def test_lm_throughput_script(tmp_path):
    out = tmp_path / "lm.json"
    proc = subprocess.run([sys.executable, "benchmarks/lm_throughput.py", "--settings", "bf16", "--steps", "2",
                           "--warmup", "1", "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["setting"] for r in rows] == ["fp32", "bf16"] and rows[0]["ratio_vs_fp32_eager"] == 1.0
    assert all(r["tokens_per_s"] > 0 and r["mfu"] is None for r in rows)  # no MFU without a known GPU peak
