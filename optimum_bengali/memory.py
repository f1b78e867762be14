"""``python -m optimum_bengali.memory MODEL_DIR TEXTS.json [BATCH]``: print the memory of a model as JSON.

Run in a fresh process so that the figures belong to this model alone: ``peak_rss_bytes`` (the whole
process, runtime libraries included) and ``model_memory_bytes`` (resident memory after loading the model
and classifying the texts, minus before loading; the runtime libraries and the tokenizer are loaded first,
so their floor is not counted; memory-mapped weights count once a call has touched them).
"""

import json
import resource
import sys
from typing import Optional


def _status_kib(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _import_runtime(fmt: str) -> None:
    """Import what loading a model of format ``fmt`` imports, so that it is not counted as the model."""
    import torch  # noqa: F401
    import transformers  # noqa: F401

    if fmt == "openvino":
        import openvino  # noqa: F401
        from optimum.intel import OVModelForSequenceClassification  # noqa: F401
    elif fmt == "torchao":
        import torchao.quantization  # noqa: F401
    elif fmt == "inc":
        import neural_compressor.torch.quantization  # noqa: F401


def main() -> None:
    from .evaluation import predict_logits
    from .formats import load_model, model_format
    from .modeling import load_tokenizer

    model_dir, texts_file = sys.argv[1], sys.argv[2]
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    texts = json.loads(open(texts_file, encoding="utf-8").read())
    _import_runtime(model_format(model_dir))
    tokenizer = load_tokenizer(model_dir, apply_normalization=False)
    before = current_rss_bytes()
    model = load_model(model_dir)
    predict_logits(model, tokenizer, texts, batch_size=batch)
    # after classifying, not just after loading: safetensors weights are memory-mapped and only become
    # resident when a call touches them
    after = current_rss_bytes()
    print(json.dumps({"peak_rss_bytes": peak_rss_bytes(), "model_memory_bytes": max(0, after - before)}))


def current_rss_bytes() -> int:
    """This process's resident set size now (psutil: the same figure on Linux, macOS and Windows)."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def peak_rss_bytes() -> int:
    """This process's peak resident set size. ``VmHWM`` is reset by exec; ``ru_maxrss`` is not (a child
    started by a large parent would report the parent's peak), so it is only the fallback."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    main()
