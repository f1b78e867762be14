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


#: ``optimum-bengali ARGS`` in a process that sends itself SIGNAL from inside OpenVINO's C++ converter: the first
#: callback the converter makes into Python (its telemetry) during ``FrontEnd.convert`` sends it
SIGNAL_INSIDE_THE_CONVERTER = """
import os, sys
import openvino.frontend.frontend as frontend
import openvino_telemetry.main as telemetry

inside, sent = [], []
convert, send_event = frontend.FrontEnd.convert, telemetry.Telemetry.send_event

def converting(self, model):
    inside.append(1)
    try:
        return convert(self, model)
    finally:
        inside.pop()

def send(self, *args, **kwargs):
    if inside and not sent:
        sent.append(1)
        os.kill(os.getpid(), int(os.environ["SIGNAL"]))
    return send_event(self, *args, **kwargs)

frontend.FrontEnd.convert, telemetry.Telemetry.send_event = converting, send
from optimum_bengali.cli import main
code = main(sys.argv[1:])
print("signal sent inside the converter" if sent else "no converter callback", file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_inside_the_openvino_converter_ends_the_run_and_keeps_the_old_output(sig, tiny_teacher_dir,
                                                                                      small_data, tmp_path):
    """OpenVINO's converter is C++ that calls back into Python: an interrupt raised inside that callback aborted
    the process (SIGTERM: ``terminate called after throwing ... KeyboardInterrupt``) or was swallowed (SIGINT:
    the run went on and replaced the output)."""
    run_dir = tmp_path / "run"
    (run_dir / "out").mkdir(parents=True)
    (run_dir / "out" / "model.safetensors").write_text("the earlier result")
    res = subprocess.run([sys.executable, "-c", SIGNAL_INSIDE_THE_CONVERTER, "compress", "--model",
                          str(tiny_teacher_dir), "--recipe", "quant-static-int8", "--data", str(small_data),
                          "--output", str(run_dir / "out"), "--no-memory", "--no-baseline", "--overwrite"],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "SIGNAL": str(int(sig))})
    err = res.stderr
    assert "signal sent inside the converter" in err, err[-2000:]
    assert res.returncode == 130, err[-2000:]
    assert "interrupt received: stopping when the native call returns" in err
    assert any(line.rstrip().endswith("interrupted") for line in err.splitlines()) and "Traceback" not in err
    assert sorted(p.name for p in run_dir.iterdir()) == ["out"], "no temporary folder or lock may remain"
    assert (run_dir / "out" / "model.safetensors").read_text() == "the earlier result"


@pytest.mark.slow
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
