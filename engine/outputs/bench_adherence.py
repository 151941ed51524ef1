"""Prompt adherence: does the image show what its prompt says? Two scorers, and none is a valid answer.

- The pocket scorer (engine.pocket.scorer) on the built-in model: background, colour, shape, size and
  (where named) position read back from the pixels; the figure is the fraction of the prompt's named
  attributes that are right. A prompt outside the pocket grammar is not scored.
- CLIP score with a CLIP model the user has (transformers' CLIPModel and CLIPProcessor, read offline):
  100 x the cosine of the image and prompt embeddings, floored at 0, as torchmetrics and the
  distillation papers compute it. Its image embeddings also measure diversity across seeds.

Without a scorer the report says adherence was not measured: a zero would read as "ignores the prompt".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from engine.outputs.trilemma import Image

Embeddings = npt.NDArray[np.float64]


class AdherenceScorer(Protocol):
    metric: str  # what report.json calls it: "pocket attributes" or "clip score"
    note: str  # one sentence for the report

    def measure(self, images: list[Image], prompt: str) -> tuple[list[float | None], Embeddings | None]:
        """Each image's adherence to the prompt (None: not scored), and image embeddings if any."""
        ...


class PocketScorer:
    metric = "pocket attributes"
    note = (
        "fraction of the prompt's named attributes (background, colour, shape, size, position) that the"
        " pocket scorer reads back from the image"
    )

    def measure(self, images: list[Image], prompt: str) -> tuple[list[float | None], Embeddings | None]:
        from engine.pocket.grammar import parse
        from engine.pocket.scorer import score

        try:
            parsed = parse(prompt)
        except ValueError:
            return [None] * len(images), None  # not a sentence of the grammar: nothing to read back
        out: list[float | None] = []
        for image in images:
            found = score(np.asarray(image)[:, :, :3], parsed)
            named = [found.background, found.color, found.shape, found.size]
            if found.position is not None:
                named.append(found.position)
            out.append(sum(named) / len(named))
        return out, None


class ClipScorer:
    """A CLIP model from a local folder in transformers' layout; loads on the CPU, reads no network."""

    metric = "clip score"

    def __init__(self, folder: Path, label: str) -> None:
        import torch
        from transformers import CLIPModel, CLIPProcessor

        self._torch = torch
        self.model: Any = CLIPModel.from_pretrained(folder, local_files_only=True).eval()
        self.processor: Any = CLIPProcessor.from_pretrained(folder, local_files_only=True)
        self.note = f"CLIP score (100 x cosine of image and prompt, floored at 0) with {label}"

    def _pil(self, images: list[Image]) -> list[Any]:
        from PIL import Image as PILImage

        return [PILImage.fromarray(np.asarray(image)[:, :, :3]) for image in images]

    def _image_embeddings(self, images: list[Image]) -> Any:
        with self._torch.inference_mode():
            pixels = self.processor(images=self._pil(images), return_tensors="pt")
            features = self.model.get_image_features(**pixels)
            features = getattr(features, "pooler_output", features)
        return features / features.norm(dim=-1, keepdim=True)

    def text_embedding(self, prompt: str) -> Any:
        limit = self.model.config.text_config.max_position_embeddings
        with self._torch.inference_mode():
            tokens = self.processor(
                text=[prompt], return_tensors="pt", padding=True, truncation=True, max_length=limit
            )
            features = self.model.get_text_features(**tokens)
            features = getattr(features, "pooler_output", features)
        return features / features.norm(dim=-1, keepdim=True)

    def measure(self, images: list[Image], prompt: str) -> tuple[list[float | None], Embeddings | None]:
        embedded = self._image_embeddings(images)
        cosines = (embedded @ self.text_embedding(prompt).T)[:, 0]
        scores: list[float | None] = [100.0 * max(float(c), 0.0) for c in cosines]
        return scores, np.asarray(embedded.float().numpy(), dtype=np.float64)
