"""Nothing lost when two runs, a Ctrl-C or a SIGTERM meet an output folder: one line, the earlier output kept."""

import os
import signal
import subprocess
import sys
import time

import pytest

from optimum_bengali import OutputError, apply_recipe
from optimum_bengali.pipeline import output_lock


def _compress(teacher, data, out, recipe="quant-static-int8", *extra):
    return subprocess.Popen([sys.executable, "-m", "optimum_bengali.cli", "compress", "--model", str(teacher),
                             "--recipe", recipe, "--data", str(data), "--output", str(out), "--no-memory",
                             "--no-baseline", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, seconds=180):
    deadline = time.time() + seconds
    while time.time() < deadline and not predicate():
        time.sleep(0.05)
    assert predicate(), "timed out"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_openvino_export_ends_the_run_and_keeps_the_old_output(sig, tiny_teacher_dir,
                                                                                   small_data, tmp_path):
    """The export runs in OpenVINO's C++, which calls back into Python: an interrupt raised there aborted the
    process (SIGTERM) or was swallowed (SIGINT, the run went on and replaced the output)."""
    run_dir = tmp_path / "run"
    (run_dir / "out").mkdir(parents=True)
    (run_dir / "out" / "model.safetensors").write_text("the earlier result")
    proc = _compress(tiny_teacher_dir, small_data, run_dir / "out", "quant-static-int8", "--overwrite")
    _wait_for(lambda: any((p / "openvino_fp32").exists() for p in run_dir.glob(".out.work-*")))
    time.sleep(0.3)  # inside the conversion
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert any(line.rstrip().endswith("interrupted") for line in err.splitlines()) and "Traceback" not in err
    assert sorted(p.name for p in run_dir.iterdir()) == ["out"], "no temporary folder or lock may remain"
    assert (run_dir / "out" / "model.safetensors").read_text() == "the earlier result"


def test_two_runs_into_one_new_output_the_second_fails_in_one_line(tiny_teacher_dir, small_data, tmp_path):
    import yaml

    runs = tmp_path / "runs"
    runs.mkdir()
    recipe = tmp_path / "long.yaml"  # training long enough for the second run to start while the first writes
    recipe.write_text(yaml.safe_dump({"name": "long", "steps": [{"type": "distil", "num_layers": 2,
                                                                 "epochs": 30.0}]}), encoding="utf-8")
    first = _compress(tiny_teacher_dir, small_data, runs / "out", str(recipe))
    _wait_for(lambda: (runs / ".out.lock").exists())
    second = _compress(tiny_teacher_dir, small_data, runs / "out", str(recipe))
    _, err2 = second.communicate(timeout=600)
    assert first.poll() is None, "the first run ended before the second one met it: lengthen its training"
    _, err1 = first.communicate(timeout=600)
    assert first.returncode == 0, err1[-2000:]
    assert second.returncode == 2, err2[-2000:]
    line = err2.strip().splitlines()[-1]
    assert line == f"error: another run (process {first.pid}) is writing {runs / 'out'}; wait for it to end or " \
                   "choose another output folder"
    assert sorted(p.name for p in runs.iterdir()) == ["out"]
    assert "long" in (runs / "out" / "recipe.yaml").read_text()


def test_an_output_written_meanwhile_is_not_replaced_and_the_result_is_kept(tiny_teacher_dir, small_data, tmp_path,
                                                                             monkeypatch):
    from optimum_bengali import pipeline

    measure = pipeline.measure_saved_model

    def measure_while_another_process_writes(folder, *args, **kwargs):
        (tmp_path / "out").mkdir(exist_ok=True)
        (tmp_path / "out" / "theirs.txt").write_text("another process's result")
        return measure(folder, *args, **kwargs)

    monkeypatch.setattr(pipeline, "measure_saved_model", measure_while_another_process_writes)
    with pytest.raises(OutputError, match=r"was written by another process while this run worked; this run's "
                                          r"result is kept in .*out\.kept"):
        apply_recipe(tiny_teacher_dir, "quant-dynamic-int8", small_data, tmp_path / "out", progress=False,
                     measure_memory=False, measure_baseline=False)
    assert (tmp_path / "out" / "theirs.txt").read_text() == "another process's result"
    assert (tmp_path / "out.kept" / "config.json").is_file() and (tmp_path / "out.kept" / "recipe.yaml").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.kept"]


def test_a_live_lock_refuses_and_a_dead_runs_lock_is_taken_over(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".out.lock").write_text(str(live.pid))
        with pytest.raises(OutputError, match=f"another run \\(process {live.pid}\\) is writing"):
            with output_lock(tmp_path / "out"):
                pass
    finally:
        live.kill()
        live.wait()
    (tmp_path / ".out.lock").write_text(str(live.pid))  # that process is gone now
    with output_lock(tmp_path / "out") as lock:
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists()


DEFERRED = """
import os, signal, time
from optimum_bengali.interrupts import deferred, handle_signals

done = []
with handle_signals():
    try:
        with deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # the handler has run: the block goes on
            done.append("after the signal")
    except KeyboardInterrupt:
        done.append("raised when the block ended")
    try:  # outside a deferred block it interrupts at once
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        done.append("slept")
    except KeyboardInterrupt:
        done.append("raised at once")
assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
print(done)
"""


def test_an_interrupt_inside_a_deferred_block_is_raised_when_the_block_ends():
    """In a process of its own: signals sent to the test runner itself could meet its other threads."""
    res = subprocess.run([sys.executable, "-c", DEFERRED], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == str(["after the signal", "raised when the block ended", "raised at once"])
    assert res.stderr.strip().endswith("interrupt received: stopping when the native call returns")
