"""Label and field selectors, with the grammar and semantics of k8s apimachinery.

Label selectors: comma = AND; `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`,
`k>N`, `k<N`.  `!=` and `notin` also match objects without the key.
Field selectors: `=`, `==`, `!=` on a per-resource set of keys; an unknown key is an error.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ_RE = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})$")
_CMP_RE = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>[<>])\s*(?P<value>-?[0-9]+)$")
_EXISTS_RE = re.compile(rf"^(?P<neg>!)?\s*(?P<key>{_KEY})$")
_VALUE_RE = re.compile(rf"^{_VALUE}$")
LABEL_VALUE_MAX_LENGTH = 63


class SelectorError(ValueError):
    """The selector text does not parse; the API answers 400 BadRequest."""


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses (`k in (a,b),x=y`)."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


Requirement = Callable[[Mapping[str, str]], bool]


def _check_value_length(key: str, values) -> None:
    """apimachinery labels.NewRequirement refuses a value a label could not hold (IsValidLabelValue)."""
    for index, value in enumerate(values):
        if len(value) > LABEL_VALUE_MAX_LENGTH:
            raise SelectorError(f'unable to parse requirement: values[{index}][{key}]: Invalid value: "{value}": '
                                f"must be no more than {LABEL_VALUE_MAX_LENGTH} characters")


def _equality(text: str):
    """(key, value) when the requirement is `k=v`, `k==v` or `k in (v)`; None otherwise."""
    match = _EQ_RE.match(text)
    if match and match["op"] != "!=":
        return match["key"], match["value"]
    match = _SET_RE.match(text)
    if match and match["op"] == "in":
        values = [v.strip() for v in match["values"].split(",")]
        if len(values) == 1:
            return match["key"], values[0]
    return None


def _requirement(text: str) -> Requirement:
    match = _SET_RE.match(text)
    if match:
        key = match["key"]
        listed = [v.strip() for v in match["values"].split(",")]
        for value in listed:
            if not _VALUE_RE.match(value):
                raise SelectorError(f"unable to parse requirement: invalid label value: {value!r}")
        _check_value_length(key, listed)
        values = set(listed)
        if match["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    match = _EQ_RE.match(text)
    if match:
        key, value = match["key"], match["value"]
        _check_value_length(key, [value])
        if match["op"] == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: key in labels and labels[key] == value
    match = _CMP_RE.match(text)
    if match:
        key, bound, greater = match["key"], int(match["value"]), match["op"] == ">"

        def compare(labels: Mapping[str, str]) -> bool:
            try:
                number = int(labels[key])
            except (KeyError, ValueError):
                return False
            return number > bound if greater else number < bound

        return compare
    match = _EXISTS_RE.match(text)
    if match:
        key = match["key"]
        if match["neg"]:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f"unable to parse requirement: {text!r}")


def parse_label_selector(text: str | None) -> Callable[[Mapping[str, str] | None], bool] | None:
    """Return a predicate over a labels mapping, or None when the selector selects everything."""
    if text is None or not text.strip():
        return None
    requirements = [_requirement(part) for part in _split_top_level(text)]
    if any(part == "" for part in _split_top_level(text)):
        raise SelectorError(f"unable to parse requirement: empty requirement in {text!r}")

    def matches(labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        for requirement in requirements:
            if not requirement(labels):
                return False
        return True

    # What a store label index can answer: objects must carry every one of these labels.
    matches.equalities = [e for e in (_equality(part) for part in _split_top_level(text)) if e is not None]
    return matches


_FIELD_RE = re.compile(r"^(?P<key>[A-Za-z0-9_./-]+)\s*(?P<op>==|=|!=)\s*(?P<value>.*)$")


def parse_field_selector(
    text: str | None, extractors: Mapping[str, Callable[[dict], str | None]]
) -> Callable[[dict], bool] | None:
    """Return a predicate over an object; `extractors` maps each known field key to a getter."""
    if text is None or not text.strip():
        return None
    terms = []
    for part in text.split(","):
        match = _FIELD_RE.match(part.strip())
        if not match:
            raise SelectorError(f"invalid selector: {part!r}; can't understand {part!r}")
        key = match["key"]
        if key not in extractors:
            known = ", ".join(f'"{k}"' for k in extractors)
            raise SelectorError(f'"{key}" is not a known field selector: only {known}')
        terms.append((extractors[key], match["op"] == "!=", match["value"]))

    def matches(obj: dict) -> bool:
        for extract, negate, value in terms:
            actual = extract(obj) or ""
            if (actual == value) == negate:
                return False
        return True

    return matches
