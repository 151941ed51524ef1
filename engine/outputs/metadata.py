"""AUTOMATIC1111's `parameters` PNG text: the de-facto interchange format between SD tools."""

from __future__ import annotations

import json
from collections.abc import Mapping


def _quote(value: str) -> str:
    # A1111 JSON-quotes a value that holds its own separators.
    return json.dumps(value) if any(c in value for c in ",:\n") else value


def a1111_parameters(prompt: str, negative_prompt: str, fields: Mapping[str, object]) -> str:
    """The three-part text: prompt, optional negative line, then `Key: value, ...`."""
    lines = [prompt]
    if negative_prompt:
        lines.append(f"Negative prompt: {negative_prompt}")
    lines.append(", ".join(f"{key}: {_quote(str(value))}" for key, value in fields.items()))
    return "\n".join(lines)
