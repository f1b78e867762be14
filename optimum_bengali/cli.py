"""``optimum-bengali`` command line (also ``optimum-cli bengali ...``).

Commands: ``compress``, ``finetune``, ``evaluate``, ``recipes``, ``push``. Heavy imports happen inside
the commands so that ``--help`` and ``recipes`` answer at once.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="folder of train/val/test CSV/JSON files, or a Hub data set id")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--normalization", choices=["nfkc", "banglabert", "none"], default="nfkc",
                   help="text normalization (banglabert: NFKC + csebuetnlp normalizer)")


def _threads(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"give a whole number >= 0 (0: every core), not {value!r}")
    return n


def _labels(value: str) -> List[str]:
    names = [v.strip() for v in value.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"give the label names in output order, separated by commas, not {value!r}")
    return names


def _model_args(p: argparse.ArgumentParser, labels: bool = True) -> None:
    """Options about what may be read from the model folder: its label order and its code."""
    if labels:
        p.add_argument("--labels", type=_labels, default=None,
                       help="the model's output labels in output order, comma-separated (needed when its config "
                            "names them only LABEL_0, LABEL_1, ... and the data's labels are names)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="let transformers run Python code from the model folder (config auto_map); only for a "
                        "folder you trust")


def _rates(value: str) -> List[float]:
    try:
        rates = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        rates = []
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError(f"give learning rates > 0, separated by commas, not {value!r}")
    return rates


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every option's default, also of options without a help line."""

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)


class _OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end like every other bad input: one ``error:`` line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_threads, default=0,
                   help="compute threads for PyTorch and OpenVINO alike (default 0: every core)")


def _norm(args: argparse.Namespace) -> Optional[str]:
    return None if args.normalization == "none" else args.normalization


def summary_rows(metrics: Dict[str, Any], baseline: Optional[Dict[str, Any]]) -> List[Tuple[str, str, str]]:
    """Rows ``(measure, this model, baseline)`` for printing."""
    def fmt(m: Optional[Dict[str, Any]], key: str) -> str:
        if not m or key not in m:
            return "-"
        v = m[key]
        if key.startswith("latency"):
            return f"{v['steady_p50_ms']:.2f} ms"
        if key in ("accuracy", "macro_f1", "weighted_f1"):
            return f"{100 * v:.2f}"
        if key.endswith("bytes") or key == "bytes_on_disk":
            return f"{v / 1e6:.1f} MB"
        return f"{v:,}" if isinstance(v, int) else str(v)

    keys = ["accuracy", "macro_f1", "weighted_f1", "latency_bs1", "latency_bs8", "parameters",
            "nonzero_parameters", "bytes_on_disk", "model_memory_bytes", "peak_rss_bytes"]
    names = {"latency_bs1": "steady p50, batch 1", "latency_bs8": "steady p50, batch 8"}
    return [(names.get(k, k), fmt(metrics, k), fmt(baseline, k)) for k in keys]


def _print_result(result: Any) -> None:
    if not getattr(result, "main_process", True):
        return  # torchrun / accelerate launch: the main process prints the one table
    print(f"\nwrote {result.output_dir}")
    print(f"{'measure':22s} {'compressed':>14s} {'input model':>14s}")
    for name, a, b in summary_rows(result.metrics, result.baseline):
        print(f"{name:22s} {a:>14s} {b:>14s}")
    for k, v in (result.metrics.get("vs_baseline") or {}).items():
        print(f"{k:22s} {v:14.2f}")
    from .runtime import describe

    print(f"runtime: {describe(result.metrics.get('runtime', {}))}"
          + (f" (input model: {describe(result.baseline.get('runtime', {}))})" if result.baseline else ""))
    print(f"latency: {result.metrics.get('latency_method', 'not measured')}")


# -- commands -----------------------------------------------------------------------------
def add_compress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="fine-tuned classifier: local folder or Hub id")
    p.add_argument("--recipe", required=True, help="shipped recipe name (see `recipes`) or YAML path")
    _data_args(p)
    p.add_argument("--output", required=True)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-baseline", action="store_true", help="do not measure the input model")
    p.add_argument("--no-memory", action="store_true", help="do not measure peak memory")
    _model_args(p)
    _threads_arg(p)


def run_compress(args: argparse.Namespace) -> int:
    from .pipeline import apply_recipe

    result = apply_recipe(args.model, args.recipe, args.data, args.output, text_column=args.text_column,
                          label_column=args.label_column, normalization=_norm(args), overwrite=args.overwrite,
                          measure_baseline=not args.no_baseline, measure_memory=not args.no_memory,
                          threads=args.threads, labels=args.labels, trust_remote_code=args.trust_remote_code)
    _print_result(result)
    return 0


def add_finetune(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="pretrained encoder or classifier: local folder or Hub id")
    src.add_argument("--from-config", help="build a randomly initialised model of this shape "
                                           "(bert-base-multilingual-cased-shape, bert-small-shape, bert-tiny-shape, bert-tiny-12l-shape)")
    _data_args(p)
    p.add_argument("--output", required=True)
    # the defaults are training.finetune.TEACHER_DEFAULTS (chosen on validation; tests check they agree)
    p.add_argument("--epochs", type=float, default=6.0)
    p.add_argument("--learning-rate", type=_rates, default=[1.5e-4],
                   help="one rate, or several separated by commas: each is tried for --trial-epochs on a copy "
                        "of the model and the best by validation macro-F1 is used")
    p.add_argument("--trial-epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--lr-scheduler", default="linear", choices=["linear", "cosine", "constant_with_warmup"])
    p.add_argument("--class-weights", default="none", choices=["none", "balanced"],
                   help="balanced: weight the loss by inverse class frequency (imbalanced data)")
    p.add_argument("--early-stopping-patience", type=int, default=2,
                   help="stop after this many epochs without a better validation macro-F1 (0: never stop early)")
    p.add_argument("--trim-vocab", action="store_true",
                   help="first keep only the vocabulary rows the training split uses (much cheaper to train)")
    p.add_argument("--vocab-size", type=int, default=8000, help="--from-config: WordPiece pieces to train")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--overwrite", action="store_true")
    _model_args(p, labels=False)
    _threads_arg(p)


def run_finetune(args: argparse.Namespace) -> int:
    from .pipeline import finetune

    result = finetune(args.model, args.data, args.output, from_config=args.from_config, vocab_size=args.vocab_size,
                      text_column=args.text_column, label_column=args.label_column, normalization=_norm(args),
                      overwrite=args.overwrite, seed=args.seed, epochs=args.epochs,
                      learning_rate=args.learning_rate[0], batch_size=args.batch_size, max_steps=args.max_steps,
                      learning_rate_candidates=args.learning_rate if len(args.learning_rate) > 1 else None,
                      trial_epochs=args.trial_epochs,
                      max_length=args.max_length, warmup_ratio=args.warmup_ratio,
                      lr_scheduler_type=args.lr_scheduler, trim_vocab=args.trim_vocab,
                      class_weights=None if args.class_weights == "none" else args.class_weights,
                      early_stopping_patience=args.early_stopping_patience or None, threads=args.threads,
                      trust_remote_code=args.trust_remote_code)
    _print_result(result)
    return 0


def add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a folder written by this package, or any classifier")
    _data_args(p)
    p.add_argument("--split", default="test")
    p.add_argument("--no-latency", action="store_true")
    _model_args(p)
    _threads_arg(p)


def run_evaluate(args: argparse.Namespace) -> int:
    from .data import load_data
    from .evaluation import evaluate_model
    from .formats import load_model, model_format
    from .modeling import load_config, load_tokenizer, output_labels
    from .pipeline import attach_labels
    from .runtime import set_threads

    set_threads(args.threads)
    trust = args.trust_remote_code
    config = load_config(args.model, trust_remote_code=trust)
    names = output_labels(config, args.labels, args.model)
    data = load_data(args.data, text_column=args.text_column, label_column=args.label_column, label_names=names,
                     required_splits=(args.split,), normalization=_norm(args))
    attach_labels(config, data, args.model, args.labels is not None)  # before any weights load
    tokenizer = load_tokenizer(args.model, apply_normalization=False, trust_remote_code=trust)  # data normalized
    # a plain transformers folder may carry code; the package's own formats load with its own classes
    extra = {"trust_remote_code": True} if trust and model_format(args.model) == "pytorch" else {}
    model = load_model(args.model, **extra)
    metrics = evaluate_model(model, tokenizer, data.texts(args.split), data.labels(args.split),
                             latency=not args.no_latency)
    print(json.dumps(metrics, indent=2))
    return 0


def add_recipes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--show", metavar="NAME", help="print one recipe's YAML with every setting resolved")


def run_recipes(args: argparse.Namespace) -> int:
    from .recipe import list_recipes, load_recipe

    if args.show:
        print(load_recipe(args.show).to_yaml(), end="")
        return 0
    items = list_recipes()
    width = max(len(n) for n, _ in items)
    for name, description in items:
        print(f"{name:{width}s}  {description}")
    return 0


def add_push(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", required=True, help="a folder written by `compress`")
    p.add_argument("--repo-id", required=True)
    p.add_argument("--private", action="store_true")


def run_push(args: argparse.Namespace) -> int:
    from .hub import push_to_hub

    print(push_to_hub(args.model_dir, args.repo_id, private=args.private))
    return 0


COMMANDS: Dict[str, Tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "compress": ("Apply a recipe to a fine-tuned classifier and measure the result.", add_compress, run_compress),
    "finetune": ("Fine-tune an encoder (or a model built from a config) on labelled Bengali text.",
                 add_finetune, run_finetune),
    "evaluate": ("Measure accuracy, macro-F1 and latency of a model on a split.", add_evaluate, run_evaluate),
    "recipes": ("List the shipped recipes.", add_recipes, run_recipes),
    "push": ("Upload a compressed model folder to the Hugging Face Hub.", add_push, run_push),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="optimum-bengali", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,  # of the same class as parser
                           formatter_class=DefaultsHelpFormatter)
        add(p)
        p.set_defaults(run=run)
    return parser


def run_command(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one parsed command the way both command lines do (``optimum-bengali`` and ``optimum-cli bengali``):
    an expected bad input ends in one ``error:`` line and exit code 2, Ctrl-C or SIGTERM in exit code 130."""
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(message)s")
    from transformers.utils import logging as hf_logging

    from .errors import OptimumBengaliError
    from .interrupts import handle_signals

    hf_logging.disable_progress_bar()  # "Loading weights" bars for every model load; training bars stay

    try:
        with handle_signals():  # Ctrl-C and SIGTERM (`timeout`, schedulers) alike, also inside native calls
            return run(args)
    except (OptimumBengaliError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: temporary folders are already cleaned up
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - only a full disk is turned into one line; the rest is raised
        where = out_of_space(exc)
        if where is None:
            raise
        print(f"error: no space left on the device{where}; free some space or choose another output folder "
              "(nothing was replaced)", file=sys.stderr)
        return 2


def out_of_space(exc: BaseException) -> Optional[str]:
    """`` (FILE)`` or ``""`` when ``exc`` (or an exception it was raised from) says the disk is full (ENOSPC,
    also wrapped by torch or safetensors as a message), else None."""
    import errno

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return f" ({exc.filename})" if exc.filename else ""
        if "No space left on device" in str(exc):
            return ""
        exc = exc.__cause__ or exc.__context__
    return None


def one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Make a parser built elsewhere (optimum-cli's) end usage mistakes like :class:`_OneLineParser`."""
    parser.error = lambda message: _OneLineParser.error(parser, message)  # type: ignore[method-assign]
    parser.formatter_class = DefaultsHelpFormatter


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``optimum-bengali`` console script."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage mistake (2, one line printed)
        return int(exc.code or 0)
    return run_command(args.run, args)


if __name__ == "__main__":
    sys.exit(main())
