"""AUTOMATIC1111's `parameters` text (its "infotext"), written and read in this one module.

The format, as A1111 writes it (create_infotext) and reads it (parse_generation_parameters):

    a prompt, maybe on several lines
    Negative prompt: a negative prompt, maybe on several lines
    Steps: 4, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 1, Seed: 0, Size: 1024x1024, ...

- the negative part is left out when it is empty, and an empty prompt leaves no line at all;
- the last line is the settings line only when A1111's field pattern finds at least three fields in it;
  every line above it is stripped, and the prompt ends where a line starts with "Negative prompt:";
- a value holding `,`, `:` or a newline is written JSON-quoted (non-ASCII kept) and read back with json;
  a value that is itself a dict or list is written bare (`Hashes: {"vae": "…", "model": "…"}`). A1111's
  pattern cuts such a value at its first comma; here a bare JSON object or list is read whole.

The reader is tolerant where tools differ and strict where it matters. Line endings are normalised
(\\r\\n and \\r) before any check. The text as a whole is refused only when it is too long, or when a
prompt is too long or holds control characters. Every settings field is read on its own: a bad value,
an unknown sampler or a setting Fewstep has no use for drops that field alone, and `ignored` says why.
The limits are those the writer keeps to (engine.contract.limits), so Fewstep reads all it writes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from engine.contract.limits import (
    CONTROL_CHARACTERS,
    MAX_FIELD_VALUE,
    MAX_FIELDS,
    MAX_GUIDANCE,
    MAX_PARAMETERS_CHARS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_SIDE,
    MAX_STEPS,
    MIN_GUIDANCE,
    MIN_STEPS,
    STYLE_WEIGHT_RANGE,
)
from engine.contract.modes import MODES, GuidanceKind
from engine.outputs.infotext_fields import ignored_pairs, source_of
from engine.outputs.png_text import InfotextError
from engine.outputs.sampler_names import a1111_names, mode_for_sampler
from engine.pocket.model import POCKET_LABEL, checkpoint_name, names_pocket_model

NEGATIVE = "Negative prompt:"
FEWSTEP_MODE = "Fewstep mode"
FEWSTEP_STYLES = "Fewstep styles"
# The exact number where `CFG scale` cannot carry it (CFG off below 1): Fewstep's own readers use it.
FEWSTEP_GUIDANCE = "Fewstep guidance"
# A mode's eta (TCD's gamma): no A1111 field means it (its "Eta" is the ancestral samplers' noise).
FEWSTEP_ETA = "Fewstep eta"
# The LCM UNet takes guidance as an embedding, not as CFG: under its own key so that no other tool reads
# it as a CFG scale of 8, which would burn the image.
LCM_EMBEDDING = "LCM guidance embedding"

# A1111's own field pattern, used as it uses it: to tell the settings line from a prompt line. Its key
# is bounded here (A1111's keys are a few words): unbounded, a 40 000-letter line without a colon makes
# the pattern backtrack for a minute.
A1111_FIELD = re.compile(r'\s*(\w[\w \-/]{1,63}):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_KEY = re.compile(r"\s*(\w[\w \-/]{1,63}):\s*")
_QUOTED = re.compile(r'"(?:\\.|[^\\"])+"')
_BARE = re.compile(r"[^,]*")
_END = re.compile(r"\s*(?:,|$)")
_SIZE = re.compile(r"(\d{1,5})x(\d{1,5})")
_LORA_TAG = re.compile(r"<(?:lora|lyco):([^:<>]{1,255})(?::([^:<>]{0,40}))?(?::[^<>]{0,80})?>", re.IGNORECASE)
# Any other extra network tag (<hypernet:…>, an extension's <kind:…>): A1111's parse_prompt removes
# every `<(\w+):([^>]+)>` from the prompt, whatever its kind, so a restored prompt drops them too.
_OTHER_TAG = re.compile(r"<(\w{1,40}):([^<>]{1,255})>")
_SPACES = re.compile(r"[ \t]{2,}")
_NAME_WEIGHT = re.compile(r"\s*([^,:]+?)\s*:\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*(?:,|\s|$)")
_NAME_HASH = re.compile(r"\s*([^,:]+?)\s*:\s*([0-9a-fA-F]{8,64})\s*(?:,|$)")


@dataclass(frozen=True)
class Ignored:
    """A field that was read but not used, and why."""

    field: str
    reason: str


@dataclass(frozen=True)
class StyleTag:
    """A style LoRA as a text names it: its name (a file stem), its weight, and A1111's short hash."""

    name: str
    weight: float
    hash: str | None = None


@dataclass(frozen=True, kw_only=True)
class Infotext:
    """What a `parameters` text says, in Fewstep's terms; None where it does not say (or said badly)."""

    prompt: str
    negative_prompt: str = ""
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None
    eta: float | None = None  # only for a mode that takes one
    mode: str | None = None
    mode_named: bool = False  # True when the text names a Fewstep mode, False when read from its sampler
    model: str | None = None
    model_hash: str | None = None
    styles: tuple[StyleTag, ...] = ()
    source: str | None = None  # the tool that wrote it, where recognisable
    ignored: tuple[Ignored, ...] = ()
    fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


# --- writing --------------------------------------------------------------------------------------


def quote(value: object) -> str:
    """A value as A1111 writes it: bare, or JSON-quoted when it holds a separator."""
    if isinstance(value, Mapping | list):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    if any(c in text for c in ",:\n") or text.startswith(('"', "{", "[")):
        return json.dumps(text, ensure_ascii=False)
    return text


def _one_line_endings(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def format_infotext(prompt: str, negative_prompt: str, fields: Mapping[str, object]) -> str:
    """The three parts: the prompt (no line when empty), the negative line (none when empty), the fields."""
    lines = []
    if prompt.strip():
        lines.append(_one_line_endings(prompt).strip())
    if negative_prompt.strip():
        lines.append(f"{NEGATIVE} {_one_line_endings(negative_prompt).strip()}")
    lines.append(", ".join(f"{key}: {quote(value)}" for key, value in fields.items()))
    return "\n".join(lines)


def _pairs(pairs: Sequence[tuple[str, object]]) -> str:
    return ", ".join(f"{name}: {value}" for name, value in pairs)


def fewstep_infotext(
    *,
    prompt: str,
    negative_prompt: str,
    mode: str,
    steps: int,
    guidance: float,
    seed: int,
    width: int,
    height: int,
    model: str,
    model_hash: str | None = None,
    styles: Sequence[StyleTag] = (),
    version: str,
    eta: float | None = None,
) -> str:
    """The text for one Fewstep image, in A1111's names, with Fewstep's own keys to read it back exactly."""
    spec = MODES[mode]
    sampler, schedule = a1111_names(spec)
    cfg = guidance if spec.guidance_kind is not GuidanceKind.EMBEDDING and guidance > 1.0 else 1.0
    fields: dict[str, object] = {"Steps": steps, "Sampler": sampler, "Schedule type": schedule}
    fields["CFG scale"] = f"{cfg:g}"
    if spec.guidance_kind is GuidanceKind.EMBEDDING:
        fields[LCM_EMBEDDING] = f"{guidance:g}"
    elif cfg != guidance:
        fields[FEWSTEP_GUIDANCE] = f"{guidance:g}"
    fields |= {"Seed": seed, "Size": f"{width}x{height}"}
    if model_hash:
        fields["Model hash"] = model_hash
    fields["Model"] = checkpoint_name(model)
    if hashed := [(s.name, s.hash) for s in styles if s.hash]:
        fields["Lora hashes"] = _pairs(hashed)
    fields[FEWSTEP_MODE] = mode
    if eta is not None:
        fields[FEWSTEP_ETA] = f"{eta:g}"
    if styles:
        fields[FEWSTEP_STYLES] = _pairs([(s.name, f"{s.weight:g}") for s in styles])
    fields["Version"] = version
    return format_infotext(prompt, negative_prompt, fields)


# --- reading --------------------------------------------------------------------------------------


def _value_at(line: str, position: int) -> tuple[str, int]:
    """(value, position after its comma) of the value starting at position, the way A1111 reads it:
    a JSON-quoted string, a bare JSON object or list (read whole), or plain text up to the next comma."""
    first = line[position : position + 1]
    quoted = _QUOTED.match(line, position) if first == '"' else None
    if quoted and (end := _END.match(line, quoted.end())):
        return quoted.group(0), end.end()
    if first in ("{", "["):
        try:
            _, stop = json.JSONDecoder().raw_decode(line, position)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than json's C stack allows
            pass
        else:
            if end := _END.match(line, stop):
                return line[position:stop], end.end()
    bare = _BARE.match(line, position)
    assert bare is not None  # [^,]* matches everywhere
    end = _END.match(line, bare.end())
    assert end is not None
    return bare.group(0).strip(), end.end()


def read_fields(line: str) -> tuple[dict[str, str], list[Ignored]]:
    """Every `Key: value` of the settings line, quoted values unquoted; what could not be read, and why."""
    fields: dict[str, str] = {}
    ignored: list[Ignored] = []
    position = 0
    while position < len(line):
        key_match = _KEY.match(line, position)
        if key_match is None:
            stop = line.find(",", position)
            stop = len(line) if stop < 0 else stop + 1
            if junk := line[position:stop].strip(" ,"):
                ignored.append(Ignored(junk[:40], "not a `Key: value` setting"))
            position = stop
            continue
        key = key_match.group(1).strip()
        value, position = _value_at(line, key_match.end())
        if value.startswith('"') and value.endswith('"') and len(value) > 1:
            try:
                value = json.loads(value)
            except ValueError:
                ignored.append(Ignored(key, "its quoted value is malformed"))
                continue
        if len(fields) >= MAX_FIELDS:
            ignored.append(Ignored("(settings)", f"more than {MAX_FIELDS} settings; the rest were not read"))
            break
        if len(value) > MAX_FIELD_VALUE:
            ignored.append(Ignored(key, f"its value is longer than {MAX_FIELD_VALUE} characters"))
        elif CONTROL_CHARACTERS.search(value):
            ignored.append(Ignored(key, "its value holds control characters"))
        elif key in fields:
            ignored.append(Ignored(key, "it is given twice; the first one was used"))
        else:
            fields[key] = value
    return fields, ignored


def _split(text: str) -> tuple[str, str, str]:
    """(prompt, negative prompt, settings line), as A1111 splits them."""
    *lines, last = text.strip().split("\n")
    if len(A1111_FIELD.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    for line in lines:
        line = line.strip()
        if not negative and line.startswith(NEGATIVE):
            negative.append(line[len(NEGATIVE) :].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    return "\n".join(prompt), "\n".join(negative), last


def strip_lora_tags(prompt: str) -> tuple[str, list[StyleTag], list[Ignored]]:
    """The prompt without its `<lora:NAME:WEIGHT>` tags (they would eat CLIP tokens), and the tags;
    other extra networks' tags leave the prompt too, each said as not applied."""
    tags: list[StyleTag] = []
    ignored: list[Ignored] = []
    for match in _LORA_TAG.finditer(prompt):
        name, weight = match.group(1).strip(), (match.group(2) or "1").strip()
        try:
            value = float(weight)
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            tags.append(StyleTag(name, value))
        else:
            ignored.append(Ignored(match.group(0)[:60], f"the weight {weight!r} is not a number"))
    for match in _OTHER_TAG.finditer(_LORA_TAG.sub("", prompt)):
        kind = match.group(1).lower()
        ignored.append(
            Ignored(match.group(0)[:60], f"Fewstep has no {kind} networks; the tag is not applied")
        )
    if not (tags or ignored):
        return prompt, tags, ignored
    # A1111 (extra_networks.parse_prompt) replaces each tag with "" and encodes the rest as it stands,
    # commas included: "a, <lora:x:1>, b" is encoded as "a, , b". Only whitespace is tidied here, which
    # CLIP's tokenizer collapses anyway (whitespace_clean); a line that held nothing but tags goes.
    lines = []
    for line in prompt.split("\n"):
        cleaned = _OTHER_TAG.sub("", _LORA_TAG.sub("", line))
        if cleaned.strip() or not line.strip():
            lines.append(_SPACES.sub(" ", cleaned).strip())
    return "\n".join(lines).strip(), tags, ignored


def _int(fields: Mapping[str, str], key: str, low: int, high: int, ignored: list[Ignored]) -> int | None:
    text = fields.get(key)
    if text is None:
        return None
    if text.isascii() and text.isdigit() and len(text) <= 20 and low <= int(text) <= high:
        return int(text)
    ignored.append(Ignored(key, f"{text[:40]!r} is not a whole number from {low} to {high}"))
    return None


def _float(fields: Mapping[str, str], key: str, ignored: list[Ignored]) -> float | None:
    text = fields.get(key)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if MIN_GUIDANCE <= value <= MAX_GUIDANCE:  # also refuses nan and inf
        return value
    ignored.append(Ignored(key, f"{text[:40]!r} is not a number from {MIN_GUIDANCE:g} to {MAX_GUIDANCE:g}"))
    return None


def _size(fields: Mapping[str, str], ignored: list[Ignored]) -> tuple[int | None, int | None]:
    text = fields.get("Size")
    if text is None:
        return None, None
    match = _SIZE.fullmatch(text)
    if match is None:
        ignored.append(Ignored("Size", f"{text[:40]!r} does not look like 1024x1024"))
        return None, None
    width, height = int(match.group(1)), int(match.group(2))
    if 8 <= width <= MAX_SIDE and 8 <= height <= MAX_SIDE and width % 8 == 0 and height % 8 == 0:
        return width, height
    ignored.append(Ignored("Size", f"{text}: width and height must be multiples of 8 from 8 to {MAX_SIDE}"))
    return None, None


def _mode(fields: Mapping[str, str], steps: int | None, ignored: list[Ignored]) -> tuple[str | None, bool]:
    named = fields.get(FEWSTEP_MODE)
    if named is not None:
        if named in MODES:
            return named, True
        ignored.append(Ignored(FEWSTEP_MODE, f"{named[:40]!r} is not a Fewstep mode"))
    if LCM_EMBEDDING in fields:
        return "lcm", False
    sampler = fields.get("Sampler")
    if sampler is None:
        return None, False
    schedule = fields.get("Schedule type", fields.get("Scheduler", ""))
    reading = mode_for_sampler(sampler, schedule, steps)
    if reading.mode is None:
        ignored.append(Ignored("Sampler", reading.unknown or "no Fewstep mode"))
    for note in reading.approximations:
        ignored.append(Ignored("Sampler" if "adds fresh noise" in note else "Schedule type", note))
    return reading.mode, False


def _guidance(fields: Mapping[str, str], mode: str | None, ignored: list[Ignored]) -> float | None:
    if FEWSTEP_GUIDANCE in fields:
        return _float(fields, FEWSTEP_GUIDANCE, ignored)
    if mode is not None and MODES[mode].guidance_kind is GuidanceKind.EMBEDDING and LCM_EMBEDDING in fields:
        return _float(fields, LCM_EMBEDDING, ignored)
    return _float(fields, "CFG scale", ignored)


def _eta(fields: Mapping[str, str], mode: str | None, ignored: list[Ignored]) -> float | None:
    text = fields.get(FEWSTEP_ETA)
    if text is None:
        return None
    if mode is None or MODES[mode].eta is None:
        ignored.append(Ignored(FEWSTEP_ETA, f"{MODES[mode].title if mode else 'no mode'} takes no eta"))
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if 0.0 <= value <= 1.0:  # also refuses nan
        return value
    ignored.append(Ignored(FEWSTEP_ETA, f"{text[:40]!r} is not a number from 0 to 1"))
    return None


def _styles(
    fields: Mapping[str, str], tags: Sequence[StyleTag], ignored: list[Ignored]
) -> tuple[StyleTag, ...]:
    hashes = {m.group(1): m.group(2).lower() for m in _NAME_HASH.finditer(fields.get("Lora hashes", ""))}
    named = fields.get(FEWSTEP_STYLES)
    # Fewstep's key, in its current `name: weight, …` form or its first `name:weight name:weight` one.
    found = [StyleTag(m.group(1), float(m.group(2))) for m in _NAME_WEIGHT.finditer(named)] if named else tags
    low, high = STYLE_WEIGHT_RANGE
    styles = []
    for style in found:
        if low <= style.weight <= high:  # also refuses nan
            styles.append(StyleTag(style.name, style.weight, hashes.get(style.name)))
        else:
            ignored.append(
                Ignored(style.name, f"style weight {style.weight:g} is outside {low:g} to {high:g}")
            )
    return tuple(styles)


def _model(fields: Mapping[str, str]) -> str | None:
    """The `Model` field; the pocket model, by either of the names Fewstep has written, as its description."""
    name = fields.get("Model")
    return POCKET_LABEL if name is not None and names_pocket_model(name) else name


def parse_infotext(text: str, keywords: frozenset[str] = frozenset()) -> Infotext:
    """Read a `parameters` text; keywords: the PNG's text chunk names, which help tell the tool.

    InfotextError only when the text as a whole cannot be used.
    """
    text = _one_line_endings(text)
    if len(text) > MAX_PARAMETERS_CHARS:
        raise InfotextError(f"the settings text is longer than {MAX_PARAMETERS_CHARS} characters")
    prompt, negative, line = _split(text)
    for name, part in (("prompt", prompt), ("negative prompt", negative)):
        if len(part) > MAX_PROMPT_CHARS:
            raise InfotextError(f"the {name} is longer than {MAX_PROMPT_CHARS} characters")
        if CONTROL_CHARACTERS.search(part):
            raise InfotextError(f"the {name} holds control characters")
    fields, ignored = read_fields(line)
    prompt, tags, tag_problems = strip_lora_tags(prompt)
    ignored += tag_problems
    steps = _int(fields, "Steps", MIN_STEPS, MAX_STEPS, ignored)
    width, height = _size(fields, ignored)
    mode, named = _mode(fields, steps, ignored)
    styles = _styles(fields, tags, ignored)
    return Infotext(
        prompt=prompt,
        negative_prompt=negative,
        seed=_int(fields, "Seed", 0, MAX_SEED, ignored),
        width=width,
        height=height,
        steps=steps,
        guidance=_guidance(fields, mode, ignored),
        eta=_eta(fields, mode, ignored),
        mode=mode,
        mode_named=named,
        model=_model(fields),
        model_hash=fields.get("Model hash"),
        styles=styles,
        source=source_of(fields, keywords),
        ignored=(*ignored, *(Ignored(key, reason) for key, reason in ignored_pairs(fields))),
        fields=MappingProxyType(fields),
    )
