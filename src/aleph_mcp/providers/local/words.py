"""Prompt words -> the `local` provider's recipe: which FFmpeg filters to run, at what speed, and what was
left out on request or not understood.

Phrases match whole words only ("nightclub" is not "night"), and a phrase after a negation in the same
clause ("no blur", "don't mirror it", "remove the vignette") is left out and reported as such.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# (label, regex of the phrases that ask for it, filter name, filter args). Order in the prompt is the
# order applied. colortemperature is in kelvin, so a lower temperature is warmer (redder).
FILTERS: tuple[tuple[str, str, str, str], ...] = (
    (
        "black and white",
        r"black[- ]and[- ]white|gr[ae]yscale|monochrome|b&w",
        "hue",
        "s=0",
    ),
    ("sepia", r"sepia", "colorchannelmixer", ".393:.769:.189:0:.349:.686:.168:0:.272:.534:.131"),
    ("vintage", r"vintage|old film|retro", "curves", "preset=vintage"),
    ("invert", r"invert(?:ed|s)?|negative", "negate", ""),
    ("mirror", r"mirror(?:ed|s)?|flip(?:ped)? horizontally|horizontal flip", "hflip", ""),
    ("upside down", r"upside[- ]down|flip(?:ped)? vertically|vertical flip", "vflip", ""),
    ("blur", r"blur(?:ry|red|s)?|soft focus", "gblur", "sigma=6"),
    ("brighten", r"brighten|brighter|lighter", "hue", "b=2"),
    ("darken", r"darken|darker", "hue", "b=-2"),
    # Day-for-night: every channel darker, blue the least, so the picture is darker and bluer.
    ("night", r"night|night[- ]?time", "colorchannelmixer", "rr=0.45:gg=0.55:bb=0.85"),
    ("contrast", r"contrast", "curves", "preset=increase_contrast"),
    ("desaturate", r"desaturated?|muted|washed out", "hue", "s=0.4"),
    ("saturate", r"saturated?|vivid|more colou?rful", "hue", "s=1.8"),
    ("warm", r"warm(?:er)?|golden hour|sunset", "colortemperature", "temperature=4000"),
    ("cool", r"cool(?:er)?|cold(?:er)?|winter", "colortemperature", "temperature=10000"),
    ("vignette", r"vignette", "vignette", ""),
)
SPEED: tuple[tuple[str, str, float], ...] = (
    ("slow motion", r"slow[- ]motion|slow down|slower|slow-mo|slowmo", 0.5),
    ("speed up", r"speed up|sped up|faster|fast forward|time-?lapse", 2.0),
)
_CLAUSES = re.compile(r"\s*(?:[,;.]|\band then\b|\bthen\b|\band\b)\s*", re.I)
# A negation reaches the phrase after it within its clause, across at most three words ("remove the
# vignette", "not too blurry"); "but", "and" or punctuation end its reach ("no blur but sepia").
_NEGATED = re.compile(
    r"\b(?:no|not|never|don'?t|do not|without|remove|skip|get rid of|take out)\b(?:\s+\S+){0,3}?\s*$"
)
_SCOPE_ENDS = re.compile(r"[,;.!?:]|\b(?:and|then|but|also|plus)\b")


@dataclass
class Recipe:
    filters: list[tuple[str, str]] = field(default_factory=list)
    speed: float = 1.0
    applied: list[str] = field(default_factory=list)
    declined: list[str] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"applied: {', '.join(self.applied) or 'nothing (copied the clip)'}"]
        if self.declined:
            parts.append(f"left out on request: {', '.join(self.declined)}")
        if self.not_understood:
            parts.append(f"not understood (ignored): {'; '.join(self.not_understood)}")
        return "; ".join(parts)


def _negated(text: str, start: int) -> bool:
    scope = text[:start]
    ends = list(_SCOPE_ENDS.finditer(scope))
    return _NEGATED.search(scope[ends[-1].end() if ends else 0 :]) is not None


def _find(text: str, pattern: str) -> tuple[tuple[int, int], bool] | None:
    """The first occurrence of `pattern` as whole words: its span, and whether every occurrence is negated
    (one plain occurrence is enough to apply it)."""
    hits = [(m.span(), _negated(text, m.start())) for m in re.finditer(rf"(?<!\w)(?:{pattern})(?!\w)", text)]
    if not hits:
        return None
    wanted = [span for span, negated in hits if not negated]
    return (min(wanted), False) if wanted else (hits[0][0], True)


def parse_prompt(prompt: str) -> Recipe:
    """Find every known phrase in the whole prompt (so "black and white" stays one phrase), apply them in
    the order they appear, and report the clauses that matched nothing."""
    text = prompt.lower().replace("\u2019", "'")  # a typographic apostrophe in "don’t"
    wanted: list[tuple[str, str, tuple[str, str] | float, str]] = [
        (label, pattern, (name, args), f"{label} ({name}{'=' + args if args else ''})")
        for label, pattern, name, args in FILTERS
    ]
    wanted += [(label, pattern, factor, f"{label} (x{factor:g} speed)") for label, pattern, factor in SPEED]
    found: list[tuple[tuple[int, int], str, tuple[str, str] | float | None]] = []
    for label, pattern, action, applied in wanted:
        if (hit := _find(text, pattern)) is not None:
            span, negated = hit
            found.append((span, label, None) if negated else (span, applied, action))
    recipe = Recipe()
    for _, label, step in sorted(found, key=lambda item: item[0]):
        if step is None:
            recipe.declined.append(label)
            continue
        recipe.applied.append(label)
        if isinstance(step, float):
            recipe.speed = step
        elif step not in recipe.filters:
            recipe.filters.append(step)
    recipe.not_understood = _unmatched(text, [span for span, _, _ in found])
    return recipe


def _unmatched(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The clauses of `text` that overlap none of `spans`."""
    unmatched, position = [], 0
    for clause in _CLAUSES.split(text):
        start = text.find(clause, position) if clause else position
        position = start + len(clause)
        if clause.strip() and not any(a < position and start < b for a, b in spans):
            unmatched.append(clause.strip())
    return unmatched
