import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from optimum_bengali.cli import main


def test_recipes_lists_every_shipped_recipe(capsys):
    from optimum_bengali import list_recipes

    assert main(["recipes"]) == 0
    printed = capsys.readouterr().out
    names = [n for n, _ in list_recipes()]
    assert len(names) >= 20 and all(n in printed for n in names)


def test_recipes_show_prints_resolved_yaml(capsys):
    assert main(["recipes", "--show", "distil-6l"]) == 0
    text = capsys.readouterr().out
    assert "type: distil" in text and "temperature: 2.0" in text and "max_steps: -1" in text


@pytest.mark.slow
def test_compress_then_evaluate(tiny_teacher_dir, small_data, tmp_path, capsys):
    out = tmp_path / "q"
    assert main(["compress", "--model", str(tiny_teacher_dir), "--recipe", "quant-dynamic-int8", "--data",
                 str(small_data), "--output", str(out), "--no-memory"]) == 0
    assert "macro_f1" in capsys.readouterr().out
    assert main(["evaluate", "--model", str(out), "--data", str(small_data), "--no-latency"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    report = json.loads((out / "compression_report.json").read_text())
    assert metrics["macro_f1"] == pytest.approx(report["metrics"]["macro_f1"])


def test_bad_input_exits_2_with_a_message(tiny_teacher_dir, small_data, tmp_path, capsys):
    code = main(["compress", "--model", str(tiny_teacher_dir), "--recipe", "no-such", "--data", str(small_data),
                 "--output", str(tmp_path / "x")])
    assert code == 2 and "unknown recipe 'no-such'" in capsys.readouterr().err
    code = main(["compress", "--model", str(tiny_teacher_dir), "--recipe", "quant-dynamic-int8", "--data",
                 str(small_data), "--label-column", "emotion", "--output", str(tmp_path / "x")])
    assert code == 2 and "no column 'emotion'" in capsys.readouterr().err


@pytest.mark.slow
def test_finetune_from_config(small_data, tmp_path):
    from transformers import AutoModelForSequenceClassification

    assert main(["finetune", "--from-config", "bert-tiny-shape", "--data", str(small_data), "--output",
                 str(tmp_path / "ft"), "--max-steps", "4", "--vocab-size", "2000"]) == 0
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ft")
    assert model.config.id2label[0] == "anger"


@pytest.mark.slow
def test_optimum_cli_registration():
    from optimum.commands.register import register_bengali

    (command,) = register_bengali.REGISTER_COMMANDS
    assert command.COMMAND.name == "bengali"
    assert {c.name for c in command.SUBCOMMANDS} == {"compress", "finetune", "evaluate", "recipes", "push"}
    # the console script installed beside this interpreter: found without the environment's bin/ on PATH
    cli = Path(sys.executable).parent / "optimum-cli"
    assert cli.is_file(), f"optimum-cli is not installed beside {sys.executable}"
    done = subprocess.run([str(cli), "bengali", "recipes"], capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "PATH"})
    assert done.returncode == 0 and "quant-static-int8" in done.stdout
    # a bad input in a real process: one line on stderr and exit code 2, no traceback
    bad = subprocess.run([str(cli), "bengali", "compress", "--model", "./nope", "--recipe", "quant-dynamic-int8",
                          "--data", "./nope-data", "--output", "./nope-out"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.strip().startswith("error: model './nope' not found") and "\n" not in bad.stderr.strip()
