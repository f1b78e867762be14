"""``apply_recipe``: run a recipe's steps on a classifier and write a measured, loadable folder."""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
import tempfile
import time
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from datasets import DatasetDict
from transformers import PreTrainedModel, PreTrainedTokenizerBase, set_seed

from . import distributed
from .card import write_model_card
from .data import LabelledData, load_data
from .errors import ModelError, OutputError
from .evaluation import measure_saved_model
from .formats import FORMATS, load_model, model_format
from .formats.pytorch import save_pytorch
from .interrupts import deferred
from .modeling import (check_sequence_classifier, has_default_labels, is_int8_torch, load_config, load_tokenizer,
                       output_labels, parameter_counts, unk_rate)
from .normalization import save_normalization
from .recipe import Recipe, load_recipe
from .runtime import use_threads
from .state import CompressionState

logger = logging.getLogger(__name__)


@dataclass
class CompressionResult:
    """What :func:`apply_recipe` returns: where the model is, the recipe used and the measurements."""

    output_dir: Path
    recipe: Recipe
    metrics: Dict[str, Any]
    baseline: Optional[Dict[str, Any]]
    steps: List[Dict[str, Any]]
    #: False in the other processes of a ``torchrun`` / ``accelerate launch`` run: they train with the main
    #: process, then leave measuring and writing to it (their ``metrics`` are empty)
    main_process: bool = True
    #: the predicted label of each test sentence, in order (kept out of the report; e.g. for confidence
    #: intervals of a macro-F1 difference, :func:`optimum_bengali.evaluation.macro_f1_difference_ci`)
    predictions: Optional[List[int]] = None

    def push_to_hub(self, repo_id: str, private: bool = False, token: Optional[str] = None,
                    commit_message: Optional[str] = None) -> str:
        """Upload the output folder to the Hugging Face Hub; returns the commit URL (main process only)."""
        from .hub import push_to_hub

        if not self.main_process:
            raise RuntimeError("push from the main process: the others have no output folder of their own")

        return push_to_hub(self.output_dir, repo_id, private=private, token=token,
                           commit_message=commit_message or f"optimum-bengali: {self.recipe.name}")


def attach_labels(config: Any, data: LabelledData, where: str, labels_given: bool = False) -> str:
    """Check the model's labels against the data's and write the data's names into ``config``; returns the rule
    that tied them (for the report).

    A model with real label names keeps them (the data was mapped to them by name). A model with only
    ``LABEL_0 ..`` placeholders takes the names the user gave in output order (``labels_given``: the data was
    mapped to them), or, when the data's labels are the integers ``0 .. n-1``, output ``i`` is label ``i``. Any
    other placeholder model is refused: which output is which named label cannot be known, and a guess would
    mislabel every prediction of the output without a word.
    """
    n = config.num_labels
    if n != len(data.label_names):
        raise ModelError(f"{where} has {n} output labels but the data has {len(data.label_names)} "
                         f"({', '.join(data.label_names)}); fine-tune it on this data first "
                         "(`optimum-bengali finetune`)")
    if not has_default_labels(config):
        return "the model's id2label; data labels mapped to it by name"
    if labels_given:
        rule = f"the labels given in output order ({', '.join(data.label_names)})"
    elif data.label_names == [str(i) for i in range(n)]:
        rule = "the model had only LABEL_i placeholders and the data integer labels: output i is label i"
    else:
        raise ModelError(f"{where} names its outputs only LABEL_0..LABEL_{n - 1}, so which output is which of the "
                         f"data's labels ({', '.join(data.label_names)}) is unknown; name them in the order the "
                         f"model was trained with: --labels {','.join(data.label_names)} (labels=[...] in Python), "
                         "reordered as needed")
    config.id2label = data.id2label
    config.label2id = data.label2id
    return rule


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def remove_leftovers(output_dir: Path) -> List[Path]:
    """Remove the hidden staging and work folders that runs killed by SIGKILL (or a power cut) left beside
    ``output_dir``; folders of a run that is still alive are left alone, and an old output set aside by a
    run killed before its replacement arrived is put back. Returns what was removed."""
    removed = []
    pattern = re.compile(rf"^\.{re.escape(output_dir.name)}\.(tmp|work|old)-(\d+)-")
    for path in output_dir.parent.glob(f".{output_dir.name}.*-*"):
        match = pattern.match(path.name)
        if not path.is_dir() or not match or _alive(int(match.group(2))):
            continue
        if match.group(1) == "old" and not output_dir.exists():
            os.replace(path, output_dir)  # killed between moving the old output aside and the new one in
            logger.warning("restored %s from %s, left by an earlier run that did not finish", output_dir, path)
            continue
        size = _folder_bytes(path)
        shutil.rmtree(path, ignore_errors=True)
        logger.warning("removed %s (%.1f MB) left by an earlier run that did not finish", path, size / 1e6)
        removed.append(path)
    return removed


def _move_into_place(staging: Path, output_dir: Path) -> None:
    """Rename ``staging`` to ``output_dir``; an existing ``output_dir`` is renamed aside first and deleted
    only once the new folder is in place (a failure in between puts it back)."""
    backup = None
    if output_dir.exists():
        backup = output_dir.parent / f".{output_dir.name}.old-{os.getpid()}-{int(time.time())}"
        os.replace(output_dir, backup)
    try:
        os.replace(staging, output_dir)
    except BaseException:
        if backup is not None:
            os.replace(backup, output_dir)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def _keep_unfinished(staging: Path, output_dir: Path, suffix: str = "unmeasured") -> Path:
    """Rename a staging folder that holds a whole model (unmeasured, or one that cannot take the output's place)
    to a visible name beside the output, ``OUTPUT.<suffix>`` (``-2``, ``-3``, ... when that exists)."""
    kept = output_dir.parent / f"{output_dir.name}.{suffix}"
    n = 1
    while kept.exists():
        n += 1
        kept = output_dir.parent / f"{output_dir.name}.{suffix}-{n}"
    os.replace(staging, kept)
    return kept


#: a lock file this young without a process id in it is being written by the run that took it
_FRESH_LOCK_SECONDS = 60


@contextmanager
def output_lock(output_dir: Path) -> Iterator[Path]:
    """Hold ``.OUTPUT.lock`` beside ``output_dir`` while the body runs: a second run into the same output fails
    at once with one :class:`OutputError` line instead of replacing the first one's result. A lock left by a
    killed run (its process is gone) is taken over."""
    lock = output_dir.parent / f".{output_dir.name}.lock"
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                text, age = lock.read_text(encoding="utf-8").strip(), time.time() - lock.stat().st_mtime
            except OSError:
                continue  # released in between: try again
            pid = int(text) if text.isdigit() else 0
            if (pid and _alive(pid)) or (not pid and age < _FRESH_LOCK_SECONDS):
                holder = f"process {pid}" if pid else "another process"
                raise OutputError(f"another run ({holder}) is writing {output_dir}; wait for it to end or choose "
                                  "another output folder") from None
            lock.unlink(missing_ok=True)  # left by a run that was killed
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))
        break
    else:  # pragma: no cover - three races in a row
        raise OutputError(f"cannot lock {output_dir} for writing; try again")
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def check_output(output_dir: Path, overwrite: bool) -> None:
    """Fail now, in one line, if ``output_dir`` cannot be written or exists (without ``overwrite``)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"output {str(output_dir)!r} is a file; give a folder path")
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{output_dir} exists and is not empty; pass overwrite=True (--overwrite)")
    parent = output_dir.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot create output {str(output_dir)!r}: {str(parent)!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write to {str(parent)!r} (permission denied); choose another output folder")
    try:  # what access() cannot tell: a read-only file system, /proc, a folder that takes no new entries
        os.rmdir(tempfile.mkdtemp(prefix=f".{output_dir.name}.probe-", dir=parent))
    except OSError as exc:
        raise OutputError(f"cannot create output {str(output_dir)!r}: {str(parent)!r} takes no new folder "
                          f"({exc.strerror or exc}); choose another output folder") from None


def apply_recipe(
    model: Union[str, Path, PreTrainedModel],
    recipe: Union[str, Path, Recipe, Dict[str, Any]],
    dataset: Union[str, Path, DatasetDict, LabelledData],
    output_dir: Union[str, Path],
    tokenizer: Optional[PreTrainedTokenizerBase] = None,
    text_column: str = "text",
    label_column: str = "label",
    normalization: Optional[str] = "nfkc",
    overwrite: bool = False,
    measure_baseline: bool = True,
    measure_memory: bool = True,
    max_latency_batches: int = 100,
    progress: bool = True,
    threads: Optional[int] = None,
    labels: Optional[Sequence[str]] = None,
    trust_remote_code: bool = False,
) -> CompressionResult:
    """Compress a fine-tuned sequence classifier with a recipe and write a measured model folder.

    Args:
        model: a local folder or Hub id of an ``AutoModelForSequenceClassification``, or the model itself
            (then pass ``tokenizer``).
        recipe: a shipped recipe name (``optimum-bengali recipes``), a YAML path, a mapping or a Recipe.
        dataset: a folder of train/val/test CSV or JSON files, a ``DatasetDict`` or a Hub id.
        output_dir: where the compressed model goes. Written in a temporary folder next to it and moved
            into place at the end, so a failed run leaves nothing half-written.
        overwrite: replace an existing ``output_dir``.
        measure_baseline: also measure the input model in the same run (speedup and size ratios).
        measure_memory: measure peak RSS of each model in a fresh process.
        threads: compute threads for PyTorch and OpenVINO alike, for training and measuring (0: every core;
            None: the count an earlier ``runtime.set_threads`` chose, else every core), set as ``--threads``
            sets them on the command line.
        labels: the model's output labels in output order, for a model whose config names them only
            ``LABEL_0..`` (``--labels``); required then unless the data's labels are the integers 0..n-1.
        trust_remote_code: let transformers run code from the model folder (a config ``auto_map``); off by
            default, so a folder's Python files never run unasked.

    Every step of the recipe is checked against the model, its tokenizer and the data before any weights
    load (:meth:`Recipe.preflight`): an unsupported combination fails in seconds, not after training.

    Returns:
        A :class:`CompressionResult`; ``result.metrics`` holds the measured figures.
    """
    recipe = load_recipe(recipe)
    output_dir = Path(output_dir)
    check_output(output_dir, overwrite)
    use_threads(threads)
    set_seed(recipe.seed)
    inputs = _prepare_inputs(model, tokenizer, dataset, text_column, label_column, normalization, recipe, labels,
                             trust_remote_code)
    data = inputs.data
    # torchrun / accelerate launch: every process trains (DDP); the main one alone measures and writes
    distributed.setup()
    main = distributed.is_main_process()
    test_texts, test_labels = data.texts("test"), data.labels("test")
    # quality on validation too: what choices are made by (the test figures only report)
    validation = (data.texts("validation"), data.labels("validation")) if "validation" in data.splits else None
    measure = {"memory": measure_memory, "max_latency_batches": max_latency_batches, "validation": validation}
    with staged_output(output_dir, clean_leftovers=main, overwrite=overwrite) as stage:
        baseline = None
        if measure_baseline and main:
            base_dir = stage.work / "baseline"
            save_pytorch(inputs.model, base_dir)
            inputs.tokenizer.save_pretrained(base_dir)
            baseline = measure_saved_model(base_dir, test_texts, test_labels, **measure)
        state = CompressionState(model=inputs.model, tokenizer=inputs.tokenizer, data=data, teacher=inputs.model,
                                 teacher_source=inputs.source, work_dir=stage.work, seed=recipe.seed,
                                 progress=progress)
        run_steps(recipe, state, main)
        if not main:
            stage.discard()
            return CompressionResult(output_dir=output_dir, recipe=recipe, metrics={}, baseline=None,
                                     steps=state.report, main_process=False)
        normalizing = _save_result(state, recipe, stage.folder)
        stage.written = True  # from here on a failure keeps the whole, unmeasured model
        metrics = measure_saved_model(stage.folder, test_texts, test_labels, counts=state.counts,
                                      predictions=True, **measure)
        predictions = metrics.pop("predictions")
        metrics["unk_rate_test"] = unk_rate(state.tokenizer, test_texts)
        if baseline:
            metrics["vs_baseline"] = compare(baseline, metrics)
        report = {"recipe": recipe.to_dict(), "source_model": inputs.source, "labels": data.label_names,
                  "labels_from": inputs.label_rule,
                  "normalization": {"training": data.normalization, "in_saved_tokenizer": normalizing},
                  "data": {s: len(data.splits[s]) for s in data.splits}, "steps": state.report,
                  "training_processes": distributed.world_size(),
                  "metrics": metrics, "baseline": baseline}
        (stage.folder / "compression_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False),
                                                              encoding="utf-8")
        write_model_card(stage.folder, recipe=recipe, source=inputs.source, metrics=metrics, baseline=baseline,
                         labels=data.label_names, fmt=metrics["format"], name=output_dir.name,
                         normalization=data.normalization, dataset=data.name)
    return CompressionResult(output_dir=output_dir, recipe=recipe, metrics=metrics, baseline=baseline,
                             steps=state.report, predictions=predictions)


@dataclass
class _Inputs:
    """The checked inputs of a run: the model to compress (a copy: steps change it in place), its tokenizer,
    the data with labels in the model's order, where the model came from and how its labels were tied."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    data: LabelledData
    source: str
    label_rule: str


def _prepare_inputs(model: Union[str, Path, PreTrainedModel], tokenizer: Optional[PreTrainedTokenizerBase],
                    dataset: Any, text_column: str, label_column: str, normalization: Optional[str],
                    recipe: Recipe, labels: Optional[Sequence[str]] = None,
                    trust_remote_code: bool = False) -> _Inputs:
    """Check the model, tokenizer, data and every recipe step (every check that needs no weights first, so that
    a bad input fails in seconds), then load the weights."""
    source = str(model) if not isinstance(model, PreTrainedModel) else getattr(model, "name_or_path", "model")
    if isinstance(model, PreTrainedModel):
        config = model.config
        check_sequence_classifier(config, type(model).__name__)
        if is_int8_torch(model):
            raise ModelError(f"{source} is already compressed ({type(model).__name__}); start from the "
                             "FP32 PyTorch classifier")
    else:
        config = load_config(model, trust_remote_code=trust_remote_code)
        fmt = model_format(model)
        if fmt != "pytorch":
            raise ModelError(f"{source} is already compressed ({fmt}); start from the FP32 PyTorch classifier")
        check_sequence_classifier(config, source)
    if tokenizer is None:
        if isinstance(model, PreTrainedModel):
            raise ModelError("pass tokenizer= when you give a model object")
        tokenizer = load_tokenizer(model, apply_normalization=False, trust_remote_code=trust_remote_code)
    data = load_data(dataset, text_column=text_column, label_column=label_column,
                     label_names=output_labels(config, labels, source), normalization=normalization)
    checked = copy.deepcopy(config)
    attach_labels(checked, data, source, labels is not None)  # label count and order checked before any weights load
    recipe.preflight(checked, tokenizer, data)
    # steps change the model in place (trimming, pruning, training): never the caller's own object
    net = copy.deepcopy(model) if isinstance(model, PreTrainedModel) else load_model(
        model, trust_remote_code=trust_remote_code)
    label_rule = attach_labels(net.config, data, source, labels is not None)
    net.eval()
    return _Inputs(model=net, tokenizer=tokenizer, data=data, source=source, label_rule=label_rule)


def run_steps(recipe: Recipe, state: CompressionState, main: bool = True) -> None:
    """Apply the recipe's steps to ``state`` in order, noting each one's seconds in ``state.report``. In the
    other processes of a distributed run (``main=False``) stop after the last step that trains."""
    last_training = max((i for i, s in enumerate(recipe.steps) if s.trains), default=-1)
    for i, step in enumerate(recipe.steps):
        if not main and i > last_training:
            break  # what follows the training (quantization, export) is the main process's alone
        logger.info("step %d/%d: %s", i + 1, len(recipe.steps), step.type_name)
        t0 = time.perf_counter()
        if FORMATS[state.format].trainable:  # a PyTorch model steps may still train (quantization comes last)
            state.counts = parameter_counts(state.model)
        state.report.append({"step": i, "type": step.type_name})
        # a step that converts the model runs native code (OpenVINO, NNCF) that an interrupt must not unwind
        with (deferred() if step.produces_final else nullcontext()):
            step.apply(state)
        state.note(seconds=round(time.perf_counter() - t0, 2))


def _save_result(state: CompressionState, recipe: Recipe, folder: Path) -> bool:
    """Write the recipe's model, tokenizer, resolved recipe and normalization record into ``folder`` (the one
    place a recipe's model is written). Returns whether the saved tokenizer normalizes raw text itself."""
    FORMATS[state.format].save(state.model, folder)
    state.tokenizer.save_pretrained(folder)
    recipe.save(folder / "recipe.yaml")
    return save_normalization(folder, state.data.normalization)  # raw text at serving time = training text


@dataclass
class Staging:
    """The temporary folders of one run beside its output: ``folder`` becomes the output, ``work`` is removed.
    Set ``written`` once ``folder`` holds a whole model (a later failure keeps it as ``OUTPUT.unmeasured``);
    :meth:`discard` drops ``folder`` at the end instead of moving it into place."""

    folder: Path
    work: Path
    written: bool = False
    discarded: bool = False

    def discard(self) -> None:
        self.discarded = True


@contextmanager
def staged_output(output_dir: Path, clean_leftovers: bool = True, overwrite: bool = False) -> Iterator[Staging]:
    """Run the body on hidden folders beside ``output_dir`` and move the result into place only when it ends
    without error, so that a failed or interrupted run leaves nothing half-written (leftovers of killed runs
    are removed first when ``clean_leftovers``). The main process (``clean_leftovers``) holds
    :func:`output_lock` throughout; an output that appeared meanwhile (without ``overwrite``) is not replaced:
    the result is kept as ``OUTPUT.kept`` and the run ends with an :class:`OutputError` naming it."""
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if clean_leftovers:
            stack.enter_context(output_lock(output_dir))
            remove_leftovers(output_dir)
        yield from _staged(output_dir, overwrite)


def _staged(output_dir: Path, overwrite: bool) -> Iterator[Staging]:
    pid = os.getpid()  # in the names, so that a later run can tell a dead run's folders from a live one's
    stage = Staging(folder=Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-{pid}-", dir=output_dir.parent)),
                    work=Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.work-{pid}-", dir=output_dir.parent)))
    try:
        yield stage
        if stage.discarded:
            shutil.rmtree(stage.folder, ignore_errors=True)
        elif not overwrite and output_dir.is_dir() and any(output_dir.iterdir()):
            kept = _keep_unfinished(stage.folder, output_dir, "kept")
            raise OutputError(f"{output_dir} was written by another process while this run worked; this run's "
                              f"result is kept in {kept}")
        else:
            stage.folder.chmod(0o755)
            _move_into_place(stage.folder, output_dir)
    except BaseException:
        if stage.written and stage.folder.is_dir():
            kept = _keep_unfinished(stage.folder, output_dir)
            logger.error("the compressed model was written but not measured; it is kept in %s", kept)
        else:
            shutil.rmtree(stage.folder, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(stage.work, ignore_errors=True)


def finetune(model: Optional[str], dataset: Any, output_dir: str, from_config: Optional[str] = None,
             vocab_size: int = 8000, text_column: str = "text", label_column: str = "label",
             normalization: Optional[str] = "nfkc", overwrite: bool = False, measure_memory: bool = True,
             progress: bool = True, seed: int = 42, trim_vocab: bool = False, threads: Optional[int] = None,
             trust_remote_code: bool = False, **settings: Any) -> "CompressionResult":
    """Fine-tune a pretrained encoder (Hub id or folder) or a model built from a config shape into a
    classifier for ``dataset``; writes a measured model folder like :func:`apply_recipe`.

    ``settings`` are :class:`FinetuneStep` fields (``epochs``, ``learning_rate``, ``max_steps``,
    ``class_weights``, ``early_stopping_patience``, ...); those not given take
    :data:`~optimum_bengali.training.finetune.TEACHER_DEFAULTS` (6 epochs at 1.5e-4, batch 32, early stopping
    after 2 epochs without a better validation macro-F1; ``early_stopping_patience=None`` turns it off). ``trim_vocab`` first keeps only the vocabulary rows
    the training split uses (a ``trim_vocab`` step): a large multilingual embedding shrinks to the pieces the
    data needs, which makes every training step cheaper. ``threads``, ``trust_remote_code``: as in
    :func:`apply_recipe`.
    """
    from transformers import AutoModelForSequenceClassification

    from .errors import RecipeError
    from .modeling import build_from_config
    from .pruning.vocab import TrimVocabStep
    from .steps import SettingError, Step
    from .training.finetune import TEACHER_DEFAULTS, FinetuneStep

    if (model is None) == (from_config is None):
        raise ModelError("give either a model (Hub id or folder) or from_config (a shape name)")
    try:  # bad inputs fail before any weights load; what is not given takes the measured teacher defaults
        step = FinetuneStep.from_dict({**TEACHER_DEFAULTS, **settings})
    except SettingError as exc:
        raise RecipeError(f"finetune: {exc}") from None
    check_output(Path(output_dir), overwrite)
    use_threads(threads)  # checked before any weights load; apply_recipe sets the same number again
    config = load_config(model, trust_remote_code=trust_remote_code) if model is not None else None
    data = load_data(dataset, text_column=text_column, label_column=label_column, normalization=normalization)
    steps: List[Step] = [TrimVocabStep()] if trim_vocab else []
    steps.append(step)
    recipe = Recipe(name="finetune", description="Fine-tune on the labelled data"
                    + (" after trimming the vocabulary to the training split." if trim_vocab else "."),
                    steps=steps, seed=seed)
    if from_config:
        net, tokenizer = build_from_config(from_config, data.texts("train"), data.label_names,
                                           vocab_size=vocab_size, seed=seed)
        net.name_or_path = f"{from_config} (random init)"
    else:
        tokenizer = load_tokenizer(model, apply_normalization=False, trust_remote_code=trust_remote_code)
        recipe.preflight(config, tokenizer, data)  # before the weights load
        net = AutoModelForSequenceClassification.from_pretrained(
            model, num_labels=len(data.label_names), id2label=data.id2label, label2id=data.label2id,
            ignore_mismatched_sizes=True, trust_remote_code=trust_remote_code)
    net.config.architectures = [type(net).__name__]
    return apply_recipe(net, recipe, data, output_dir, tokenizer=tokenizer, overwrite=overwrite,
                        measure_baseline=False, measure_memory=measure_memory, progress=progress, threads=threads)


def compare(baseline: Dict[str, Any], metrics: Dict[str, Any]) -> Dict[str, float]:
    """Speedup (steady-state p50, and end to end), size ratios and quality change of ``metrics`` against
    ``baseline`` (same run)."""
    out: Dict[str, float] = {}
    for bs in (1, 8):
        key = f"latency_bs{bs}"
        if key in baseline and key in metrics:  # steady state, and end to end (tokenization included)
            out[f"speedup_bs{bs}"] = baseline[key]["steady_p50_ms"] / metrics[key]["steady_p50_ms"]
            out[f"end_to_end_speedup_bs{bs}"] = (baseline[key]["end_to_end_p50_ms"]
                                                 / metrics[key]["end_to_end_p50_ms"])
    for key in ("bytes_on_disk", "weight_bytes", "parameters"):
        if baseline.get(key) and metrics.get(key):
            out[f"{key}_ratio"] = baseline[key] / metrics[key]
    for key in ("accuracy", "macro_f1", "weighted_f1"):
        out[f"{key}_change_points"] = 100.0 * (metrics[key] - baseline[key])
    return out
