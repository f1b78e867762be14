"""Every expected bad input ends in one line ``error: ...`` that names the thing and the fix, exit code 2,
before any weights are loaded or any training starts. The README section "What happens on bad input"
lists the same cases."""

import json
import shutil
import sys

import pandas as pd
import pytest

from optimum_bengali.cli import main


@pytest.fixture()
def no_weight_loading(monkeypatch):
    """Loading a model's weights fails the test: every error below must be found before that."""
    from transformers import AutoModelForSequenceClassification

    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded before the bad input was found")

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", refuse)


@pytest.fixture()
def offline(monkeypatch):
    """No network here or in CI: make the Hub lookups fail at once instead of after retries."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture()
def bad(tmp_path, tiny_teacher_dir, small_data):
    """A playground of broken inputs next to a good teacher and good data."""
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "a-file").write_text("x")
    no_tok = tmp_path / "no-tokenizer"
    no_tok.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_teacher_dir / name, no_tok / name)
    mlm = tmp_path / "mlm"
    shutil.copytree(tiny_teacher_dir, mlm)
    (mlm / "config.json").write_text((mlm / "config.json").read_text().replace(
        "BertForSequenceClassification", "BertForMaskedLM"))
    for name, edit in {"no-test": lambda s, df: None if s == "test" else df,
                       "empty-test": lambda s, df: df.head(0) if s == "test" else df,
                       "unknown-label": lambda s, df: df.assign(label=["love"] + list(df.label[1:]))
                       if s == "test" else df}.items():
        folder = tmp_path / name
        folder.mkdir()
        for split in ("train", "val", "test"):
            df = edit(split, pd.read_csv(small_data / f"{split}.csv"))
            if df is not None:
                df.to_csv(folder / f"{split}.csv", index=False)
    for name, edit in {"jsonl-no-text": _jsonl_without_text, "two-text-columns": _two_text_columns,
                       "utf16": lambda f: (f / "val.csv").write_bytes((f / "val.csv").read_text().encode("utf-16")),
                       "cp1252": lambda f: (f / "val.csv").write_bytes(b"text,label\ncaf\xe9 ok,joy\n"),
                       "tsv-named-csv": lambda f: pd.read_csv(f / "train.csv").to_csv(f / "train.csv", sep="\t",
                                                                                      index=False)}.items():
        shutil.copytree(small_data, tmp_path / name)
        edit(tmp_path / name)
    placeholder = tmp_path / "placeholder-labels"
    shutil.copytree(tiny_teacher_dir, placeholder)
    config = json.loads((placeholder / "config.json").read_text())
    config["id2label"] = {str(i): f"LABEL_{i}" for i in range(6)}
    config["label2id"] = {f"LABEL_{i}": i for i in range(6)}
    (placeholder / "config.json").write_text(json.dumps(config))
    remote = tmp_path / "remote-code"
    remote.mkdir()
    (remote / "config.json").write_text(json.dumps({
        "model_type": "my-bengali", "architectures": ["MyForSequenceClassification"],
        "auto_map": {"AutoConfig": "configuration_my.MyConfig"}}))
    (remote / "configuration_my.py").write_text(f"open({str(tmp_path / 'RAN')!r}, 'w').write('ran')\n")
    (tmp_path / "epochs-inf.yaml").write_text("name: x\nsteps:\n  - type: finetune\n    epochs: .inf\n")
    (tmp_path / "epochs-1e300.yaml").write_text("name: x\nsteps:\n  - type: finetune\n    epochs: 1e300\n")
    (tmp_path / "existing").mkdir()
    (tmp_path / "existing" / "model.safetensors").write_text("an earlier result")
    (tmp_path / "train-after-quantize.yaml").write_text(
        "name: x\nsteps:\n  - type: quantize\n    backend: openvino\n  - type: finetune\n")
    (tmp_path / "train-after-magnitude.yaml").write_text(
        "name: x\nsteps:\n  - type: prune\n    method: magnitude\n  - type: finetune\n")
    (tmp_path / "sparse-then-quantize.yaml").write_text(
        "name: x\nsteps:\n  - type: prune\n    save: sparse\n  - type: quantize\n    backend: openvino\n")
    (tmp_path / "sparsity-150.yaml").write_text("name: x\nsteps:\n  - type: prune\n    sparsity: 1.5\n")
    return tmp_path


def _jsonl_without_text(folder):
    df = pd.read_csv(folder / "train.csv")
    (folder / "train.csv").unlink()
    rows = [{"text": t, "label": l} for t, l in zip(df.text, df.label)]
    del rows[3]["text"]
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")


def _two_text_columns(folder):
    df = pd.read_csv(folder / "test.csv")
    df.insert(1, "again", df.text.str[::-1])
    df.columns = ["text", "text", "label"]
    df.to_csv(folder / "test.csv", index=False)


TEACHER, DATA = "{teacher}", "{data}"

# (name, command line, the words the one-line message must contain)
CASES = [
    ("model folder that does not exist", ["compress", "--model", "./no-such-model"],
     "model './no-such-model' not found: no such folder, and it is not a Hub id"),
    ("model folder without config.json", ["compress", "--model", "{tmp}/empty-folder"], "has no config.json"),
    ("model given as a file", ["compress", "--model", "{tmp}/a-file"], "is a file; give the folder"),
    ("Hub model that cannot be fetched", ["compress", "--model", "someone/bengali-model"],
     "cannot fetch 'someone/bengali-model' from the Hugging Face Hub"),
    ("model that is not a classifier", ["compress", "--model", "{tmp}/mlm"],
     "is a BertForMaskedLM, not a sequence classifier; fine-tune one first"),
    ("model folder without a tokenizer", ["compress", "--model", "{tmp}/no-tokenizer"],
     "the folder has no tokenizer files; save the tokenizer beside the model"),
    ("data folder that does not exist", ["compress", "--data", "./no-such-data"],
     "data './no-such-data' not found: no such folder"),
    ("data without a test split", ["compress", "--data", "{tmp}/no-test"], "missing split 'test'"),
    ("empty split", ["compress", "--data", "{tmp}/empty-test"], "split 'test' is empty"),
    ("wrong column name", ["compress", "--text-column", "sentence"],
     "has no column 'sentence' (columns: text, label); pass text_column="),
    ("labels the model does not know", ["compress", "--data", "{tmp}/unknown-label"],
     "split 'test' has labels the model does not know: love; known labels: anger, disgust"),
    ("output folder that exists", ["compress", "--output", "{tmp}/existing"],
     "exists and is not empty; pass overwrite=True (--overwrite)"),
    ("output below a file", ["compress", "--output", "{tmp}/a-file/out"], "is a file, not a folder"),
    ("output that cannot be created", ["compress", "--output", "/proc/optimum-bengali-out"],
     "cannot create output '/proc/optimum-bengali-out': '/proc' takes no new folder"),
    ("unknown recipe name", ["compress", "--recipe", "no-such-recipe"],
     "unknown recipe 'no-such-recipe': give a YAML path or one of"),
    ("recipe file that does not exist", ["compress", "--recipe", "./missing.yaml"],
     "recipe file 'missing.yaml' does not exist"),
    ("training after quantization", ["compress", "--recipe", "{tmp}/train-after-quantize.yaml"],
     "step 1 (finetune) needs a PyTorch model but step 0 (quantize)"),
    ("training after unstructured pruning", ["compress", "--recipe", "{tmp}/train-after-magnitude.yaml"],
     "step 1 (finetune) trains after step 0 (prune, unstructured): the zeroed weights would grow back"),
    ("sparse save before quantization", ["compress", "--recipe", "{tmp}/sparse-then-quantize.yaml"],
     "step 0 (prune) has save: sparse, but step 1 (quantize) converts the model afterwards"),
    ("setting out of range", ["compress", "--recipe", "{tmp}/sparsity-150.yaml"],
     "step 0 (prune): field 'sparsity': must be < 1, got 1.5"),
    ("negative thread count", ["compress", "--threads", "-2"], "give a whole number >= 0"),
    ("unknown option value", ["compress", "--normalization", "nfd"], "invalid choice: 'nfd'"),
    ("evaluate a model that does not exist", ["evaluate", "--model", "./nope"], "model './nope' not found"),
    ("finetune setting out of range", ["finetune", "--epochs", "-1"], "finetune: field 'epochs': must be > 0"),
    ("finetune from a model that does not exist", ["finetune", "--model", "./nope"], "model './nope' not found"),
    ("finetune with a negative thread count", ["finetune", "--threads", "-1"], "give a whole number >= 0"),
    ("JSONL line without the text key", ["compress", "--data", "{tmp}/jsonl-no-text"],
     "train.jsonl: row 4 has no 'text' value (missing or null); give every row its text"),
    ("CSV with two text columns", ["compress", "--data", "{tmp}/two-text-columns"],
     "test.csv: the header names column 'text' 2 times; rename or drop the extra ones"),
    ("UTF-16 file", ["compress", "--data", "{tmp}/utf16"],
     "val.csv: the file is UTF-16, not UTF-8; convert it, e.g. iconv -f UTF-16 -t UTF-8"),
    ("cp1252 file", ["evaluate", "--data", "{tmp}/cp1252", "--split", "validation"],
     "val.csv: the file is not UTF-8 (byte 0xe9 on line 2); convert it, e.g. iconv -f CP1252 -t UTF-8"),
    ("TSV named .csv", ["compress", "--data", "{tmp}/tsv-named-csv"],
     "train.csv: the header is separated by tabs, not commas"),
    ("model with only LABEL_i names and named data", ["compress", "--model", "{tmp}/placeholder-labels"],
     "names its outputs only LABEL_0..LABEL_5, so which output is which of the data's labels"),
    ("evaluate a model with only LABEL_i names", ["evaluate", "--model", "{tmp}/placeholder-labels"],
     "--labels anger,disgust,fear,joy,sadness,surprise (labels=[...] in Python)"),
    ("labels option with too few names", ["compress", "--labels", "joy,sadness"],
     "2 labels given (joy, sadness) but"),
    ("model folder that asks to run its own code", ["evaluate", "--model", "{tmp}/remote-code"],
     "needs its own code (an auto_map in config.json) to load; this package does not run code from a model folder"),
    ("infinite epochs", ["compress", "--recipe", "{tmp}/epochs-inf.yaml"],
     "step 0 (finetune): field 'epochs': expected a finite number, got inf"),
    ("epochs in exponent form", ["compress", "--recipe", "{tmp}/epochs-1e300.yaml"],
     "step 0 (finetune): field 'epochs': must be <= 1000, got 1e+300"),
]

DEFAULTS = {"compress": {"--model": TEACHER, "--recipe": "quant-dynamic-int8", "--data": DATA,
                         "--output": "{tmp}/out"},
            "evaluate": {"--model": TEACHER, "--data": DATA},
            "finetune": {"--model": TEACHER, "--data": DATA, "--output": "{tmp}/out"}}


def command_line(args, tmp, teacher, data):
    """The case's arguments on top of good defaults for its command."""
    command, given = args[0], dict(zip(args[1::2], args[2::2]))
    options = {**DEFAULTS[command], **given}
    fill = {"tmp": str(tmp), "teacher": str(teacher), "data": str(data)}
    return [command] + [part.format(**fill) for kv in options.items() for part in kv]


def optimum_cli(argv, monkeypatch):
    """``optimum-cli bengali ARGV`` in this process; returns its exit code (an uncaught error fails the test)."""
    from optimum.commands.optimum_cli import main as optimum_main

    monkeypatch.setattr(sys, "argv", ["optimum-cli", "bengali", *argv])
    try:
        optimum_main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


@pytest.mark.parametrize("entry", ["optimum-bengali", "optimum-cli bengali"])
@pytest.mark.parametrize("name,args,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_before_any_weights_load(name, args, expected, entry, bad, tiny_teacher_dir,
                                                              small_data, no_weight_loading, offline, capsys,
                                                              monkeypatch):
    argv = command_line(args, bad, tiny_teacher_dir, small_data)
    code = main(argv) if entry == "optimum-bengali" else optimum_cli(argv, monkeypatch)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    assert expected in err, err
    assert not (bad / "out").exists()
    assert not (bad / "RAN").exists(), "code from a model folder ran"


def test_there_are_at_least_twelve_cases_and_the_readme_lists_them():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What happens on bad input", 1)[1].split("\n## ", 1)[0]
    assert len(CASES) >= 12
    missing = [name for name, _, expected in CASES if expected not in section]
    assert not missing, f"README section lacks: {missing}"


@pytest.mark.parametrize("call", ["apply_recipe", "finetune"])
def test_python_thread_count_is_checked_before_any_weights_load(call, tiny_teacher_dir, small_data, tmp_path,
                                                                no_weight_loading):
    from optimum_bengali import RunSettingError, apply_recipe, finetune

    with pytest.raises(RunSettingError, match="threads must be a whole number >= 0"):
        if call == "apply_recipe":
            apply_recipe(tiny_teacher_dir, "quant-dynamic-int8", small_data, tmp_path / "out", threads=-1)
        else:
            finetune(str(tiny_teacher_dir), small_data, str(tmp_path / "out"), threads=-1)
    assert not (tmp_path / "out").exists()


def _one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


@pytest.mark.slow
def test_damaged_weights_and_ir_are_one_line(tiny_teacher_dir, small_data, tmp_path, capsys):
    """A truncated safetensors file (a copy that stopped half-way) and a damaged OpenVINO IR."""
    trunc = tmp_path / "truncated"
    shutil.copytree(tiny_teacher_dir, trunc)
    weights = (trunc / "model.safetensors").read_bytes()
    (trunc / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    code = main(["compress", "--model", str(trunc), "--recipe", "quant-dynamic-int8", "--data", str(small_data),
                 "--output", str(tmp_path / "out")])
    line = _one_line(capsys)
    assert code == 2 and line.startswith(f"error: cannot load {str(trunc)!r} (pytorch format): SafetensorError: ")
    assert line.endswith("its files may be damaged or incomplete: copy or save the model again")
    assert main(["compress", "--model", str(tiny_teacher_dir), "--recipe", "openvino-export", "--data",
                 str(small_data), "--output", str(tmp_path / "ov"), "--no-baseline", "--no-memory"]) == 0
    capsys.readouterr()
    for name, damage in (("openvino_model.xml", lambda b: b[: len(b) // 2]), ("openvino_model.bin", lambda b: b[:64])):
        broken = tmp_path / f"broken-{name}"
        shutil.copytree(tmp_path / "ov", broken)
        (broken / name).write_bytes(damage((broken / name).read_bytes()))
        code = main(["evaluate", "--model", str(broken), "--data", str(small_data), "--no-latency"])
        line = _one_line(capsys)
        assert code == 2 and line.startswith(f"error: cannot load {str(broken)!r} (openvino format): RuntimeError: ")
        assert "Exception from src" not in line  # OpenVINO's own reason, not its source location


def test_a_full_disk_is_one_line_and_replaces_nothing(tiny_teacher_dir, small_data, tmp_path, capsys, monkeypatch):
    import errno

    from optimum_bengali import pipeline

    def full(model, folder):
        raise OSError(errno.ENOSPC, "No space left on device", str(folder))

    monkeypatch.setattr(pipeline, "save_pytorch", full)
    code = main(["compress", "--model", str(tiny_teacher_dir), "--recipe", "quant-dynamic-int8", "--data",
                 str(small_data), "--output", str(tmp_path / "out")])
    line = _one_line(capsys)
    assert code == 2 and line.startswith("error: no space left on the device (") and "(nothing was replaced)" in line
    assert list(tmp_path.iterdir()) == []


def test_more_threads_than_cores_are_capped_with_a_warning(caplog):
    import os

    import torch

    from optimum_bengali.runtime import set_threads

    cores, before = os.cpu_count(), torch.get_num_threads()
    try:
        with caplog.at_level("WARNING"):
            assert set_threads(99999999999) == cores
        assert f"threads 99999999999 is more than this machine's {cores} cores: using {cores}" in caplog.text
    finally:
        set_threads(before)


@pytest.mark.slow
def test_code_in_a_model_folder_never_runs_even_with_yes_on_stdin(bad, small_data):
    import subprocess

    res = subprocess.run([sys.executable, "-m", "optimum_bengali.cli", "evaluate", "--model",
                          str(bad / "remote-code"), "--data", str(small_data)], input="y\ny\n", text=True,
                         capture_output=True, timeout=300)
    assert res.returncode == 2 and "needs its own code" in res.stderr.strip().splitlines()[-1]
    assert not (bad / "RAN").exists()


def test_trust_remote_code_runs_the_folders_code_only_when_asked_and_says_so(tmp_path, caplog):
    from optimum_bengali import ModelError
    from optimum_bengali.modeling import load_config

    folder = tmp_path / "remote"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "my-bengali",
                                                    "auto_map": {"AutoConfig": "configuration_my.MyConfig"}}))
    (folder / "configuration_my.py").write_text(
        f"open({str(tmp_path / 'RAN')!r}, 'w').write('ran')\n"
        "from transformers import PretrainedConfig\n\n\n"
        "class MyConfig(PretrainedConfig):\n    model_type = 'my-bengali'\n")
    with pytest.raises(ModelError, match="needs its own code"):
        load_config(folder)
    assert not (tmp_path / "RAN").exists()
    with caplog.at_level("WARNING"):
        config = load_config(folder, trust_remote_code=True)
    assert type(config).__name__ == "MyConfig" and (tmp_path / "RAN").exists()
    assert f"trust_remote_code: Python code from {folder} may run (its config's auto_map names " \
           "configuration_my.MyConfig)" in caplog.text
