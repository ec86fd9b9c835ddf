"""Text embeddings, offline: the ``Embedder`` protocol and its runtimes (PyTorch fp32,
ONNX Runtime fp32 and int8), loaded from the packaged model, never from a hub.

Owns: the only imports of torch, sentence-transformers and onnxruntime.
May import: ``casegraph.errors``, ``casegraph.ops.settings`` and ``casegraph.domain.embedder``
(the ``Embedder`` protocol its runtimes satisfy).
"""
