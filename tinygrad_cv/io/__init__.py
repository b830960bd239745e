"""Weight files and the user cache: ONNX and PyTorch formats read without their libraries.

- ``cache``: where downloads live, SHA-256 checks, atomic writes, downloads with a progress bar.
- ``onnx``: a minimal protobuf reader for the stored tensors (initializers) of an ONNX model.
- ``torch_format``: PyTorch checkpoints (zip and legacy layouts) through a restricted unpickler.
- ``weights``: the known VGG weights, their sources, checksums and input conventions.
"""
