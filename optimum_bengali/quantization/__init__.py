"""Post-training quantization backends: OpenVINO/NNCF (default), torch.ao dynamic int8, torchao dynamic int8,
Neural Compressor.

Each backend is one module whose ``quantize(step, state)`` registers itself in :mod:`.backends`; importing the
package registers all of them (each imports its heavy library inside ``quantize``, on use).
"""

from . import inc, openvino, torch_dynamic, torchao_dynamic  # noqa: F401  (each registers its backend)
