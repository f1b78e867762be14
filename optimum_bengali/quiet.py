"""Drop third-party log lines that tell a user of this package nothing they can act on.

Each entry names the logger and a part of the message; everything else those libraries log still
reaches the user. Installed once, on ``import optimum_bengali``.
"""

from __future__ import annotations

import logging
from typing import Dict, Tuple

NOISE: Dict[str, Tuple[str, ...]] = {
    # transformers imports torchao (installed with neural-compressor), which registers enums the deprecated way
    "torch.utils._pytree": ("is an Enum subclass and is now natively supported",),
    "torch.utils.cpp_extension": ("No CUDA runtime is found",),
    # optimum-intel looks a local folder up in the Hub cache when offline, fails, and carries on correctly
    "optimum.intel.openvino.modeling_base": ("Could not infer whether the model was already converted",),
    "optimum.intel.openvino.quantization": ("`remove_unused_columns` is deprecated",),
    # tracing a classifier for OpenVINO export reads the config's unused loss_type
    "transformers.modeling_utils": ("`loss_type=None` was set in the config",),
}


class _DropNoise(logging.Filter):
    def __init__(self, prefixes: Tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(part in message for part in self.prefixes)


def quiet_third_party_messages() -> None:
    """Install the filters (idempotent)."""
    for name, prefixes in NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise(prefixes))
