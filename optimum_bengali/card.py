"""The Hub model card (``README.md`` with YAML front matter) written next to every output."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .formats import loader_kwargs_of, loader_of
from .paths import looks_like_local_path
from .recipe import Recipe
from .runtime import describe, saved_ov_config, saved_static_lengths


def _fmt_bytes(n: Optional[float]) -> str:
    return "n/a" if not n else f"{n / 1e6:.1f} MB"


def _source_name(source: str) -> Tuple[str, Optional[str]]:
    """How the card names the input model, and its Hub id if it has one: never a path on this machine."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if Path(source).exists() or looks_like_local_path(source):
        return Path(source).resolve().name, None
    try:
        validate_repo_id(source)
    except HFValidationError:
        return source, None  # e.g. "bert-small-shape (random init)"
    return source, source


def write_model_card(folder: Path, recipe: Recipe, source: str, metrics: Dict[str, Any],
                     baseline: Optional[Dict[str, Any]], labels: List[str], fmt: str,
                     name: Optional[str] = None, normalization: Optional[str] = "nfkc",
                     dataset: Optional[str] = None) -> None:
    """Write ``folder/README.md`` with ``huggingface_hub.ModelCard``: metadata (language bn, pipeline tag, base
    model, ``EvalResult``s for the test split, so the Hub shows them in the model index) and a table.

    ``name`` is the model's name (the final output folder's, when ``folder`` is a staging folder);
    ``normalization`` the text normalization of training (shown in the usage example); ``dataset`` the
    data set's name (a Hub id, or a local folder's name), recorded with the metrics in ``model-index``.
    The source model is named by its Hub id or its folder's name, never by a local path.
    """
    name = name or folder.name
    tags = ["optimum-bengali", "bengali", "text-classification", *sorted({s.type_name for s in recipe.steps})]
    if fmt == "openvino":
        tags.append("openvino")
    source_name, base_model = _source_name(source)
    data_name = dataset or "labelled Bengali text"
    results = [EvalResult(task_type="text-classification", task_name="Text Classification",
                          dataset_type=data_name, dataset_name=data_name, dataset_split="test",
                          metric_type=kind, metric_name=label, metric_value=round(float(metrics[key]), 4))
               for kind, label, key in (("accuracy", "accuracy", "accuracy"), ("f1", "macro F1", "macro_f1"),
                                        ("f1", "weighted F1", "weighted_f1"))]
    card_data = ModelCardData(
        language=["bn"], library_name="optimum-intel" if fmt == "openvino" else "transformers",
        pipeline_tag="text-classification", tags=tags, model_name=name, eval_results=results,
        base_model=base_model,
        datasets=[dataset] if dataset and "/" in dataset else None)
    rows = [("", "this model", "input model")]

    def row(name: str, key: str, fn) -> None:
        rows.append((name, fn(metrics.get(key)), fn(baseline.get(key)) if baseline else "not measured"))

    row("accuracy", "accuracy", lambda v: f"{100 * v:.2f}" if v is not None else "n/a")
    row("macro-F1", "macro_f1", lambda v: f"{100 * v:.2f}" if v is not None else "n/a")
    row("weighted-F1", "weighted_f1", lambda v: f"{100 * v:.2f}" if v is not None else "n/a")
    for bs in (1, 8):
        row(f"steady-state latency p50 / p95, batch {bs} (ms)", f"latency_bs{bs}",
            lambda v: f"{v['steady_p50_ms']:.2f} / {v['steady_p95_ms']:.2f}" if v else "n/a")
        row(f"first call of a new input shape, batch {bs} (ms, mean)", f"latency_bs{bs}",
            lambda v: f"{v['first_call_mean_ms']:.2f}" if v else "n/a")
        row(f"end to end with tokenization p50, batch {bs} (ms)", f"latency_bs{bs}",
            lambda v: f"{v['end_to_end_p50_ms']:.2f}" if v else "n/a")
    row("parameters", "parameters", lambda v: f"{v:,}" if v else "n/a")
    row("non-zero parameters", "nonzero_parameters", lambda v: f"{v:,}" if v else "n/a")
    row("bytes on disk", "bytes_on_disk", _fmt_bytes)
    row("model memory (RSS after loading and classifying minus before)", "model_memory_bytes", _fmt_bytes)
    row("peak RSS (whole process)", "peak_rss_bytes", _fmt_bytes)
    row("runtime", "runtime", lambda v: describe(v) if v else "n/a")
    if "compile_seconds" in metrics:  # torch.compile'd graphs: one-time cost, not in the latency rows
        row("one-time compilation before the first call (s)", "compile_seconds",
            lambda v: f"{v:.1f}" if v is not None else "n/a")
    table = "\n".join("| " + " | ".join(r) + " |" + ("\n|---|---|---|" if i == 0 else "")
                      for i, r in enumerate(rows))
    load = f"from {loader_of(fmt)} as Model"
    stored = saved_ov_config(folder) if fmt == "openvino" else {}
    load_args = f", ov_config={stored!r}" if stored else ""  # the runtime settings it was measured with
    extra = loader_kwargs_of(fmt)  # e.g. trust_remote_code=True for folders that carry their modeling file
    load_args += f", {extra}" if extra else ""
    if normalization == "banglabert":
        prepare = ("from optimum_bengali import normalize_bengali  # the csebuetnlp normalizer, as in training\n"
                   'texts = [normalize_bengali("আমি আজ খুব খুশি", banglabert=True)]\n')
        normalization_note = ("The tokenizer applies Unicode NFKC itself; the csebuetnlp normalizer it was "
                              "trained with must be applied before it, as above (`normalization.json`). "
                              "`optimum_bengali.load_tokenizer(folder)` returns a tokenizer that applies both.")
    else:
        prepare = 'texts = ["আমি আজ খুব খুশি"]\n'
        normalization_note = ("Text normalization: the tokenizer applies Unicode NFKC itself, as training did, "
                              "so raw text gives the tokens the model was measured on." if normalization else
                              "Text normalization: none.")
    lengths = saved_static_lengths(folder) if fmt == "openvino" else None
    static_note = ("\n\nThe latency above was measured with static-shape length buckets "
                   f"({', '.join(map(str, lengths))} tokens: each batch padded to the next one, one compiled model "
                   "per shape). `optimum_bengali.load_model(folder)` applies them; the plain `from_pretrained` "
                   "above runs the same weights with dynamic shapes (same predictions, slower at batch 1)."
                   if lengths else "")
    body = f"""
# {name}

A Bengali text classifier ({', '.join(labels)}) compressed from `{source_name}` with the
[optimum-bengali](https://github.com/optimum-bengali/optimum-bengali) recipe **{recipe.name}**:
{recipe.description}

Steps: {' -> '.join(s.type_name for s in recipe.steps)} (full settings in `recipe.yaml`, all
measurements in `compression_report.json`).

## Measured on the test split of {data_name} ({metrics.get('n_eval')} sentences), same run, same machine

{table}

Latency: {metrics.get('latency_method', 'not measured')}. CPU: {(metrics.get('runtime') or {}).get('cpu', 'n/a')}.

## Use

```python
from transformers import AutoTokenizer
{load}
model = Model.from_pretrained("path/or/repo-id"{load_args})
tokenizer = AutoTokenizer.from_pretrained("path/or/repo-id")
{prepare}logits = model(**tokenizer(texts, return_tensors="pt")).logits
print(model.config.id2label[int(logits.argmax(-1))])
```

{normalization_note}{static_note}
"""
    ModelCard("---\n" + card_data.to_yaml() + "\n---\n" + body).save(folder / "README.md")
