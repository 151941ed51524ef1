"""The pocket model's tokenizers and text encoders, and prompt encoding exactly as SDXL's pipeline does it.

The tokenizers are CLIP BPE tokenizers in the real file layout whose merges make each word of the
grammar one token. Prompts are padded to ``MAX_TOKENS`` (16, not 77: the grammar's longest sentence has
13 tokens with BOS and EOS, and every padding token would cost training time and be a key the UNet
attends to); ``model_max_length`` and ``max_position_embeddings`` say so in the files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch

from devtools.pocket.spec import MAX_TOKENS, POCKET_SPEC
from devtools.sdxl_config import EOS
from devtools.tiny_model import clip_text_config, tiny_vocab_and_merges, write_json, write_tokenizer
from engine.pocket.grammar import WORDS

FILE_ONLY_KEYS = ("architectures", "torch_dtype", "transformers_version")
# SDXL's time ids at the native size: original (64, 64), crop (0, 0), target (64, 64).
TIME_IDS = (64.0, 64.0, 0.0, 0.0, 64.0, 64.0)


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """CLIP's BPE of one word: merge the lowest-ranked adjacent pair until none is left."""
    parts = [*word[:-1], word[-1] + "</w>"]
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), len(ranks)), i) for i, (a, b) in enumerate(pairwise(parts))]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return parts


def _ranks(merges: list[str]) -> dict[tuple[str, str], int]:
    ranks: dict[tuple[str, str], int] = {}
    for i, merge in enumerate(merges):
        left, right = merge.split()
        ranks[(left, right)] = i
    return ranks


def vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """A valid CLIP BPE vocabulary in which every word of the grammar is exactly one token.

    One chain of merges per word can be cut by an earlier word's merge ("top" merges ``t o``, which
    splits "bottom" into ``bot to m``); merges of the pieces are added until every word is whole.
    """
    vocab, merges = tiny_vocab_and_merges(WORDS)
    specials = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])][-2:]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])][:-2]
    known = set(tokens)
    for word in WORDS:
        while len(parts := _bpe(word, _ranks(merges))) > 1:
            merged = parts[0] + parts[1]
            merges.append(f"{parts[0]} {parts[1]}")
            if merged not in known:
                tokens.append(merged)
                known.add(merged)
    tokens += specials
    return {token: i for i, token in enumerate(tokens)}, merges


def text_config(*, second: bool) -> dict[str, Any]:
    """``text_encoder{,_2}/config.json`` as the real 2023 files have it, with the pocket sizes."""
    vocab, _ = vocab_and_merges()
    config = clip_text_config(POCKET_SPEC, len(vocab), second=second)
    config["max_position_embeddings"] = MAX_TOKENS
    return config


def write_tokenizers(base: Path) -> None:
    """``tokenizer`` (pads with EOS) and ``tokenizer_2`` (pads with ``!``) under a base folder."""
    vocab, merges = vocab_and_merges()
    for name, pad in (("tokenizer", EOS), ("tokenizer_2", "!")):
        write_tokenizer(base / name, vocab, merges, pad=pad)
        path = base / name / "tokenizer_config.json"
        config = json.loads(path.read_text(encoding="utf-8"))
        config["model_max_length"] = MAX_TOKENS
        write_json(path, config)


def load_tokenizers(base: Path) -> tuple[Any, Any]:
    from transformers import CLIPTokenizer

    return (
        CLIPTokenizer.from_pretrained(base / "tokenizer"),
        CLIPTokenizer.from_pretrained(base / "tokenizer_2"),
    )


def build_text_encoders(seed: int) -> tuple[Any, Any]:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    models = []
    for second in (False, True):
        raw = text_config(second=second)
        config = CLIPTextConfig(**{k: v for k, v in raw.items() if k not in FILE_ONLY_KEYS})
        torch.manual_seed(seed * 1009 + (2 if second else 1))
        models.append(CLIPTextModelWithProjection(config) if second else CLIPTextModel(config))
    return models[0], models[1]


def tokenize(tokenizer: Any, texts: Sequence[str]) -> torch.Tensor:
    """Token ids as the SDXL pipeline makes them: padded to the tokenizer's maximum, truncated."""
    ids = tokenizer(
        list(texts),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return torch.as_tensor(ids)


def encode(te1: Any, te2: Any, ids1: torch.Tensor, ids2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden [B, T, 144], pooled [B, 80]): penultimate layers of both encoders, te2's projection.

    The same tensors as ``StableDiffusionXLPipeline.encode_prompt`` with clip_skip None.
    """
    out1 = te1(ids1, output_hidden_states=True)
    out2 = te2(ids2, output_hidden_states=True)
    hidden = torch.cat([out1.hidden_states[-2], out2.hidden_states[-2]], dim=-1)
    return hidden, out2.text_embeds


def time_ids(batch: int) -> torch.Tensor:
    return torch.tensor([TIME_IDS], dtype=torch.float32).repeat(batch, 1)
