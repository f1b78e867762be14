"""Post-training quantization backends: OpenVINO/NNCF (default), torch dynamic int8, Neural Compressor.

Each backend is one module exposing ``quantize(step, state)``; :mod:`.step` imports it on use.
"""
