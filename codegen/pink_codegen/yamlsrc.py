"""Safe YAML loading that keeps the position of every node.

PyYAML's `compose` (safe loader, no object construction) gives a node tree with marks; we turn it into
`YNode`s so the spec loader can point at the exact line and column of any key or value. Two YAML 1.1
traps are closed here: duplicate keys are errors (PyYAML silently keeps the last one), and the words
on/off/yes/no/y/n stay strings (a state named ON must not become True).
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import yaml

from pink_codegen.errors import Pos, SpecError, SpecProblem

_YAML11_BOOLS = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")


@attrs.frozen
class YNode:
    """A YAML value with its position. `value` is dict[str, YNode], list[YNode] or a scalar."""

    value: Any
    pos: Pos
    key_pos: dict[str, Pos] = attrs.field(factory=dict)
    style: str | None = None  # scalar style: None (plain), "'", '"', "|", ">"
    span: tuple[int, int] = (0, 0)  # character offsets of the node in the source text

    @property
    def is_map(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)

    @property
    def is_scalar(self) -> bool:
        return not (self.is_map or self.is_list)


def _pos(file: str, mark: yaml.Mark) -> Pos:
    return Pos(file, mark.line + 1, mark.column + 1)


def _scalar(node: yaml.ScalarNode) -> Any:
    tag = node.tag
    text = node.value
    if tag == "tag:yaml.org,2002:bool" and _YAML11_BOOLS.match(text):
        return text
    if tag == "tag:yaml.org,2002:bool":
        return text.lower() == "true"
    if tag == "tag:yaml.org,2002:int":
        try:
            return int(text.replace("_", ""), 0)
        except ValueError:
            return text
    if tag == "tag:yaml.org,2002:float":
        # Numbers that money flows through are kept as text: the spec loader parses them exactly
        # (Decimal/Fraction), never through a binary float.
        return _ExactNumber(text)
    if tag == "tag:yaml.org,2002:null":
        return None
    return text


class _ExactNumber(str):
    """A YAML float literal kept as its exact text."""


_STANDARD_TAG = "tag:yaml.org,2002:"
# The tags plain YAML resolves to by itself (`=` resolves to "value", dates to "timestamp").
_ALLOWED_TAGS = {_STANDARD_TAG + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "value", "timestamp")}


# A spec is a few thousand nodes; more means an alias bomb (anchors expanding into each other).
MAX_NODES = 200_000


class _TooBig(Exception):
    pass


class _SelfAlias(Exception):
    def __init__(self, pos: Pos) -> None:
        self.pos = pos


def _convert(file: str, node: yaml.Node, problems: list[SpecProblem], budget: list[int] | None = None,
             path: tuple[int, ...] = ()) -> YNode:
    if budget is not None:
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooBig
    if id(node) in path:
        raise _SelfAlias(_pos(file, node.start_mark))
    path = (*path, id(node))
    pos = _pos(file, node.start_mark)
    if node.tag not in _ALLOWED_TAGS:
        # Nothing is ever constructed from a tag, but an explicit tag in a spec is a red flag either way.
        tag = node.tag.replace(_STANDARD_TAG, "!!")
        problems.append(SpecProblem(pos, "", f"YAML tag '{tag}' is not allowed in a spec; write plain values"))
        return YNode(None, pos)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, YNode] = {}
        key_pos: dict[str, Pos] = {}
        for key_node, value_node in node.value:
            kpos = _pos(file, key_node.start_mark)
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(SpecProblem(kpos, "", "mapping keys must be plain names"))
                continue
            key = str(key_node.value)
            if key in out:
                problems.append(
                    SpecProblem(kpos, "", f"duplicate key '{key}' (first at line {key_pos[key].line})")
                )
                continue
            out[key] = _convert(file, value_node, problems, budget, path)
            key_pos[key] = kpos
        return YNode(out, pos, key_pos)
    if isinstance(node, yaml.SequenceNode):
        return YNode([_convert(file, item, problems, budget, path) for item in node.value], pos)
    assert isinstance(node, yaml.ScalarNode)
    return YNode(_scalar(node), pos, style=node.style, span=(node.start_mark.index, node.end_mark.index))


def load_located(text: str, file: str) -> YNode:
    """Parse one YAML document with the safe composer; raise SpecError with line:col on bad YAML."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise SpecError([SpecProblem(Pos(file, 1, 1), "", "YAML nested too deeply; a spec is a few levels of "
                                                          "mappings and lists")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = _pos(file, mark) if mark is not None else Pos(file, 1, 1)
        problem = " ".join((exc.problem or str(exc)).split())
        if exc.context:
            context = " ".join(exc.context.split())
            where = ""
            if exc.context_mark is not None and exc.context_mark is not mark:
                where = f" (opened at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
            problem = f"{context}{where}: {problem}"
        raise SpecError([SpecProblem(pos, "", f"YAML syntax error: {problem}")]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise SpecError([SpecProblem(Pos(file, line, col), "", f"YAML error: character U+{ord(char):04X} is "
                                                               f"not allowed in a spec (control character)")]) from None
    except yaml.YAMLError as exc:
        raise SpecError([SpecProblem(Pos(file, 1, 1), "", f"YAML error: {' '.join(str(exc).split())}")]) from None
    if node is None:
        raise SpecError([SpecProblem(Pos(file, 1, 1), "", "the file is empty; a machine spec is a mapping")])
    problems: list[SpecProblem] = []
    try:
        root = _convert(file, node, problems, [MAX_NODES])
    except _SelfAlias as exc:
        raise SpecError([SpecProblem(exc.pos, "", "YAML alias used inside its own anchor (the value would contain "
                                                  "itself)")]) from None
    except RecursionError:
        raise SpecError([SpecProblem(_pos(file, node.start_mark), "", "YAML nested too deeply; a spec is a few "
                                                                      "levels of mappings and lists")]) from None
    except _TooBig:
        raise SpecError([SpecProblem(_pos(file, node.start_mark), "", f"YAML expands to more than {MAX_NODES} "
                                                                      f"values (aliases within aliases?); a spec "
                                                                      f"is far smaller")]) from None
    if problems:
        raise SpecError(problems)
    return root
