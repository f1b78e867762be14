"""``python -m optimum_bengali.memory MODEL_DIR TEXTS.json [BATCH]``: print peak RSS in bytes.

Run in a fresh process so that the figure belongs to this model alone.
"""

import json
import resource
import sys


def main() -> None:
    from .evaluation import predict_logits
    from .modeling import load_model, load_tokenizer

    model_dir, texts_file = sys.argv[1], sys.argv[2]
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    texts = json.loads(open(texts_file, encoding="utf-8").read())
    predict_logits(load_model(model_dir), load_tokenizer(model_dir), texts, batch_size=batch)
    print(peak_rss_bytes())


def peak_rss_bytes() -> int:
    """This process's peak resident set size. ``VmHWM`` is reset by exec; ``ru_maxrss`` is not (a child
    started by a large parent would report the parent's peak), so it is only the fallback."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    main()
