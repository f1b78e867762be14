"""Runtime settings: one thread count for PyTorch and OpenVINO alike, OpenVINO settings kept with a saved
model, and the settings actually in effect read back from the runtime for every report.

>>> from optimum_bengali.runtime import set_threads, runtime_settings
>>> set_threads(2)                        # torch.set_num_threads(2) and INFERENCE_NUM_THREADS=2 for OpenVINO
>>> runtime_settings(model)               # what the runtime reports, e.g. {"engine": "openvino", ...}
"""

from __future__ import annotations

import json
import logging
import numbers
import os
import platform
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

logger = logging.getLogger(__name__)

#: file in an OpenVINO output folder with the ``ov_config`` it should be compiled with
OPENVINO_RUNTIME_FILE = "openvino_runtime.json"
#: key of that file holding static-shape bucket lengths (this package's, not an OpenVINO property)
STATIC_LENGTHS_KEY = "static_lengths"
#: keys of that file that belong to this package, not to OpenVINO's ``ov_config``
OWN_KEYS = (STATIC_LENGTHS_KEY,)

_threads: Optional[int] = None


def set_threads(threads: Optional[int]) -> int:
    """Use ``threads`` compute threads in PyTorch and in every OpenVINO model loaded afterwards.

    ``None`` or 0 means every core of this machine; more threads than cores are capped at the core count (with
    a warning: more would only make the threads wait for each other). Returns the number in effect.
    """
    import torch

    from .errors import RunSettingError

    global _threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 0):
        raise RunSettingError(f"threads must be a whole number >= 0 (0 or None: every core), got {threads!r}")
    cores = os.cpu_count() or 1
    if threads and threads > cores:
        logger.warning("threads %d is more than this machine's %d cores: using %d", threads, cores, cores)
    n = min(threads or cores, cores)
    torch.set_num_threads(n)
    _threads = n
    return n


def use_threads(threads: Optional[int] = None) -> int:
    """What ``apply_recipe(threads=...)`` does: :func:`set_threads` with ``threads``, or with the count an
    earlier :func:`set_threads` chose when ``threads`` is None (every core if none did), so that PyTorch and
    OpenVINO always run with the same count. Returns the number in effect."""
    return set_threads(threads if threads is not None else _threads)


def saved_ov_config(folder: Union[str, Path]) -> Dict[str, str]:
    """The OpenVINO settings stored with a model folder (e.g. ``INFERENCE_PRECISION_HINT``); this package's own
    keys there (``static_lengths``) are not OpenVINO properties and are left out."""
    return {str(k): str(v) for k, v in _runtime_file(folder).items() if k not in OWN_KEYS}


def saved_static_lengths(folder: Union[str, Path]) -> Optional[List[int]]:
    """The static-shape bucket lengths stored with a model folder, or None (dynamic shapes)."""
    value = _runtime_file(folder).get(STATIC_LENGTHS_KEY)
    return [int(v) for v in value] if value else None


def _runtime_file(folder: Union[str, Path]) -> Dict[str, Any]:
    path = Path(folder) / OPENVINO_RUNTIME_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def ov_config(folder: Union[str, Path]) -> Dict[str, str]:
    """The ``ov_config`` to compile a saved OpenVINO model with: its stored settings, then the thread count
    from :func:`set_threads`, then optimum-intel's default latency hint."""
    config = {"PERFORMANCE_HINT": "LATENCY", **saved_ov_config(folder)}
    if _threads:
        config["INFERENCE_NUM_THREADS"] = str(_threads)
    return config


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def openvino_cpu_capabilities() -> list:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` for the CPU (``BF16`` is there when bf16 runs natively)."""
    import openvino as ov

    return [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]


def _compiled(model: Any) -> Any:
    request = getattr(model, "request", None)
    if request is None and hasattr(model, "compile"):
        model.compile()
        request = getattr(model, "request", None)
    return request


def openvino_precision(ov_model: Any, hint: str) -> str:
    """What an OpenVINO model runs in, from its graph: ``int8 MatMuls, f32 rest`` when it has ``FakeQuantize``
    ops (static int8, QAT: the CPU plugin runs the quantized MatMuls in int8 and the rest at the inference
    precision ``hint``), ``int8 weights, f32 compute`` when only its weights are int8 (weight-only), else
    ``hint``."""
    if ov_model is None or not hasattr(ov_model, "get_ops"):
        return hint
    ops = ov_model.get_ops()
    if any(op.get_type_name() == "FakeQuantize" for op in ops):
        return f"int8 MatMuls, {hint} rest"
    if any(op.get_type_name() == "Constant" and op.get_output_element_type(0).get_type_name() in ("i8", "u8")
           for op in ops):
        return f"int8 weights, {hint} compute"
    return hint


def runtime_settings(model: Any) -> Dict[str, Any]:
    """The settings in effect for ``model``, read back from its runtime: engine, threads, and for OpenVINO
    the compiled model's inference precision hint (``inference_precision``), what runs in int8
    (``precision``, see :func:`openvino_precision`), streams, performance hint and execution mode."""
    import torch

    from .modeling import int8_torch_kind

    out: Dict[str, Any] = {"cpu": cpu_model(), "torch_threads": torch.get_num_threads()}
    compiled = _compiled(model) if not isinstance(model, torch.nn.Module) else None
    if compiled is not None and hasattr(compiled, "get_property"):
        def prop(name: str) -> str:
            try:
                value = compiled.get_property(name)
            except Exception:  # a property this OpenVINO version does not have
                return "unknown"
            if hasattr(value, "get_type_name"):  # an element type: f32, bf16, f16
                return value.get_type_name()
            return str(getattr(value, "name", value))  # enums (LATENCY, PERFORMANCE) and plain values

        hint = prop("INFERENCE_PRECISION_HINT")
        out.update(engine="openvino", precision=openvino_precision(getattr(model, "model", None), hint),
                   inference_precision=hint,
                   threads=int(prop("INFERENCE_NUM_THREADS")), streams=int(prop("NUM_STREAMS")),
                   performance_hint=prop("PERFORMANCE_HINT"), execution_mode=prop("EXECUTION_MODE_HINT"))
        if getattr(model, "static_lengths", None):
            out["static_lengths"] = list(model.static_lengths)
    else:
        dtype = next((p.dtype for p in model.parameters()), torch.float32) if isinstance(
            model, torch.nn.Module) else torch.float32
        precision = str(dtype).replace("torch.", "")
        kind = int8_torch_kind(model) if isinstance(model, torch.nn.Module) else None
        if kind:
            precision = f"int8 dynamic Linear ({kind}), {precision} rest"
        elif getattr(model, "runtime_precision", None):  # a model that says what it runs in (INC graphs)
            precision = model.runtime_precision
        out.update(engine="pytorch", precision=precision,
                   threads=torch.get_num_threads(), compiled=bool(getattr(model, "compiled", False)))
    return out


def describe(settings: Dict[str, Any]) -> str:
    """One short label of runtime settings, e.g. ``openvino f32, 2 threads, 1 stream, LATENCY``."""
    if not settings:
        return "-"
    text = f"{settings.get('engine')} {settings.get('precision')}, {settings.get('threads')} threads"
    if settings.get("engine") == "openvino":
        text += f", {settings.get('streams')} stream(s), {settings.get('performance_hint')}"
        if settings.get("static_lengths"):
            text += ", static lengths " + "/".join(str(v) for v in settings["static_lengths"])
    elif settings.get("compiled"):
        text += ", torch.compile"
    return text
