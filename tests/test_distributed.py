"""Every training step under torchrun: the processes train together, the main one alone measures and writes."""

import json
import os
import subprocess
import sys

import pytest

RECIPE = """name: distil-2l-dynamic
steps:
  - type: distil
    num_layers: 2
    max_steps: 4
    batch_size: 8
  - type: quantize
    backend: torch
    mode: dynamic
"""


def _compress(launcher, teacher, data, out, recipe, cache):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "OPTIMUM_BENGALI_CACHE": str(cache)}
    cmd = [*launcher, "-m", "optimum_bengali.cli", "compress", "--model", str(teacher), "--recipe", str(recipe),
           "--data", str(data), "--output", str(out), "--no-memory", "--no-baseline"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _recipe_and_runs(tmp_path, text):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    runs = tmp_path / "runs"
    runs.mkdir()
    return recipe, runs


@pytest.mark.slow
def test_two_processes_give_one_output_like_one_process(varied_teacher_dir, small_data, tmp_path):
    recipe, runs = _recipe_and_runs(tmp_path, RECIPE)
    two = _compress(TORCHRUN, varied_teacher_dir, small_data, runs / "two", recipe, tmp_path / "cache2")
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("wrote ") == 1  # one process measured, wrote and printed
    assert sorted(p.name for p in runs.iterdir()) == ["two"]  # no staging or work folders left by any rank
    one = _compress([sys.executable], varied_teacher_dir, small_data, runs / "one", recipe, tmp_path / "cache1")
    assert one.returncode == 0, one.stderr[-3000:]
    r1, r2 = (json.loads((runs / n / "compression_report.json").read_text()) for n in ("one", "two"))
    assert r2["training_processes"] == 2 and r1["training_processes"] == 1
    assert r2["labels"] == r1["labels"] and r2["labels_from"] == r1["labels_from"]
    assert [s["type"] for s in r2["steps"]] == [s["type"] for s in r1["steps"]] == ["distil", "quantize"]
    assert r2["metrics"]["format"] == r1["metrics"]["format"] == "torch-int8"
    # the teacher logits were computed once, in two shares, and cached by the main process alone ...
    (two_cache,) = (tmp_path / "cache2" / "teacher_logits").glob("*.npy")
    (one_cache,) = (tmp_path / "cache1" / "teacher_logits").glob("*.npy")
    # ... under the same key, with the rows of the one-process cache in the same order
    assert two_cache.name == one_cache.name
    import numpy as np

    np.testing.assert_allclose(np.load(two_cache), np.load(one_cache), atol=1e-5)


QAT_RECIPE = """name: qat-2p
steps:
  - type: qat
    num_samples: 16
    max_steps: 2
    batch_size: 8
"""


@pytest.mark.slow
def test_quantization_aware_training_under_torchrun(varied_teacher_dir, small_data, tmp_path):
    """Both processes calibrate the same fake quantizers and train them together; the main process alone
    converts, measures and writes the OpenVINO int8 folder."""
    recipe, runs = _recipe_and_runs(tmp_path, QAT_RECIPE)
    two = _compress(TORCHRUN, varied_teacher_dir, small_data, runs / "qat", recipe, tmp_path / "cache")
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("wrote ") == 1
    assert sorted(p.name for p in runs.iterdir()) == ["qat"]
    report = json.loads((runs / "qat" / "compression_report.json").read_text())
    assert report["training_processes"] == 2 and report["metrics"]["format"] == "openvino"
    assert report["steps"][0]["fake_quantize_ops"] > 0
