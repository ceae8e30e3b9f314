"""Sentence embeddings for search by meaning: the locked ONNX model run by onnxruntime.

The model (all-MiniLM-L6-v2, int8; `models.lock` [embeddings]) maps a text to a 384-number
vector; texts that mean the same lie close together whatever their words. Mean pooling over
the tokens and unit length, as sentence-transformers does for this model, so the dot product
of two vectors is their cosine similarity (what pgvector's `<=>` ranks by).

Loaded once per process from EMBEDDINGS_MODEL_DIR; `inv models.pull` (or `inv up`) puts the
verified files there. Without them the service still runs: /v1/embed answers 503 saying how
to bring the model, and search stays keyword-only.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

REQUIRED_FILES = ("model.onnx", "tokenizer.json")
MAX_TOKENS = 256  # what the model was trained with; longer texts are cut
MODEL_NAME = "all-minilm-l6-v2-int8"


class EmbeddingsUnavailableError(Exception):
    """No embedding model in EMBEDDINGS_MODEL_DIR, or it does not load."""


@dataclass
class EmbeddingModel:
    directory: Path
    threads: int = 1
    name: str = MODEL_NAME

    def __post_init__(self) -> None:
        self._session: Any = None  # onnxruntime.InferenceSession once loaded
        self._tokenizer: Any = None  # tokenizers.Tokenizer once loaded
        self._load_lock = threading.Lock()
        self.dimensions = 0

    def missing(self) -> list[str]:
        return [n for n in REQUIRED_FILES if not (self.directory / n).is_file()]

    def load(self) -> None:
        """Load the model (once); EmbeddingsUnavailableError says what to do when it cannot."""
        with self._load_lock:
            if self._session is not None:
                return
            missing = self.missing()
            if missing:
                raise EmbeddingsUnavailableError(
                    f"no embedding model in {self.directory} (missing {', '.join(missing)}): "
                    "run `uv run inv models.pull --env <env>` (or set EMBEDDINGS_MODEL_DIR); "
                    "search stays keyword-only meanwhile"
                )
            import onnxruntime
            from tokenizers import Tokenizer

            options = onnxruntime.SessionOptions()
            # One call uses `threads` cores; concurrency comes from the calls themselves.
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            try:
                session = onnxruntime.InferenceSession(
                    str(self.directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
                )
                tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
            except Exception as exc:  # a damaged file: say which, never serve garbage vectors
                raise EmbeddingsUnavailableError(
                    f"the embedding model in {self.directory} does not load ({exc}); "
                    "`uv run inv models.pull --env <env> --replace` restores the locked files"
                ) from exc
            tokenizer.enable_truncation(MAX_TOKENS)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, no secret
            output = session.get_outputs()[0]
            self.dimensions = int(output.shape[-1])
            self._tokenizer, self._session = tokenizer, session

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Unit-length vectors, one row per text (CPU-bound: call it off the event loop)."""
        import numpy as np

        self.load()
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (hidden,) = self._session.run(None, feeds)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
