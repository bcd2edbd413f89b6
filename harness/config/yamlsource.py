"""YAML loading that remembers where every key came from.

pydantic reports errors by key path; users need file and line. We compose the
YAML node tree once, record the line of every mapping key and sequence item,
and translate a path back to a line when reporting.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import ConfigError

Path_ = tuple[str | int, ...]


@dataclass
class YamlSource:
    """Parsed YAML data plus a key-path -> line index."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        """Line of the deepest known prefix of `path`."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def error(self, path: Path_, message: str) -> ConfigError:
        return ConfigError(self.file, self.line_of(path), format_path(path), message)

    def validate(self, model: type[BaseModel], data: Any = None, base: Path_ = ()) -> Any:
        """Validate into `model`; the first error becomes a ConfigError with file:line."""
        try:
            return model.model_validate(self.data if data is None else data)
        except ValidationError as exc:
            # a misspelt key also makes the right one "missing": report the misspelling
            errs = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
            err = errs[0]
            loc = base + tuple(p for p in err["loc"] if not _is_union_tag(p))
            message = _message(err)
            if err["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
                parent = err["loc"][:-1]
                known = [
                    e["loc"][-1] for e in errs if e["type"] == "missing" and e["loc"][:-1] == parent
                ]
                known += list(model.model_fields) if not parent else []
                close = difflib.get_close_matches(loc[-1], [str(k) for k in known], n=1)
                message += f" (did you mean {close[0]!r}?)" if close else ""
            raise self.error(loc, message) from None


def _is_union_tag(part: Any) -> bool:
    # pydantic puts union member / function-validator names in `loc`
    return isinstance(part, str) and (part.startswith("function-") or "[" in part)


def _message(err: Mapping[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        index = isinstance(part, int) and not isinstance(part, bool)
        out += f"[{part}]" if index else (f".{part}" if out else str(part))
    return out


def load_yaml(path: str | Path) -> YamlSource:
    """Read a YAML file; syntax errors become ConfigError with the line."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(str(p), None, "", f"cannot read: {exc.strerror}") from None
    return parse_yaml(text, str(p))


class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader with YAML 1.2 booleans: only true/false are booleans.

    libyaml's parser when PyYAML has it (6x faster: `harness validate` of a 72-cell
    matrix parses the file once per cell); the resolvers below are Python either way.

    YAML 1.1 reads `on`, `off`, `yes`, `no` as booleans, so an unquoted `on:` key (a
    timeline trigger) became `True`. Boolean fields still accept yes/no (pydantic).
    """


Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

VAR = re.compile(r"\$\{(\w+)\}")
_TOKEN = re.compile("\u27e6(\\w+)\u27e7")  # what ${name} becomes before parsing


def parse_yaml(
    text: str, file: str = "<string>", variables: dict[str, Any] | None = None
) -> YamlSource:
    """Parse YAML; with `variables`, every `${name}` is replaced by that value as YAML data.

    A scalar that is only `${name}` (plain or quoted: `"${name}"` keeps a flow mapping
    valid YAML for editors) becomes the value itself (a mapping, a list, a number);
    `${name}` inside other text is interpolated. Either way values are never pasted as
    text, so a value holding `#` or `: ` stays one value, and lines stay the file's own.
    """
    if variables is not None:
        text = VAR.sub(lambda m: f"\u27e6{m.group(1)}\u27e7", text)
    loader = None
    try:
        loader = Loader(text)  # a non-printable character is an error here already
        node = loader.get_single_node()
        if node is not None and variables is not None:
            node = _substitute(node, variables, file)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(file, line, "", f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, None, "", f"invalid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(file, None, "", "invalid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    src = YamlSource(file, data)
    if node is not None:
        _index(node, (), src.lines)
        _check_duplicate_keys(node, (), src)
    return src


def _substitute(node: yaml.Node, variables: dict[str, Any], file: str) -> yaml.Node:
    if isinstance(node, yaml.MappingNode):
        node.value = [
            (_substitute(k, variables, file), _substitute(v, variables, file))
            for k, v in node.value
        ]
    elif isinstance(node, yaml.SequenceNode):
        node.value = [_substitute(v, variables, file) for v in node.value]
    elif isinstance(node, yaml.ScalarNode) and _TOKEN.search(node.value):
        for name in _TOKEN.findall(node.value):
            if name not in variables:
                raise ConfigError(
                    file, node.start_mark.line + 1, name, f"no matrix variable {name!r}"
                )
        whole = _TOKEN.fullmatch(node.value)
        # plain (None from PyYAML, "" from libyaml) or quoted: the whole scalar is the variable
        if whole and node.style in (None, "", '"', "'"):
            new = yaml.representer.SafeRepresenter().represent_data(variables[whole.group(1)])
            _mark(new, node.start_mark, node.end_mark)
            return new
        value = _TOKEN.sub(lambda m: _as_text(variables[m.group(1)]), node.value)
        tag = (
            Loader("").resolve(yaml.ScalarNode, value, (True, False))
            if not node.style
            else "tag:yaml.org,2002:str"
        )
        return yaml.ScalarNode(tag, value, node.start_mark, node.end_mark, node.style)
    return node


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value) if isinstance(value, int | float) else json.dumps(value)


def _mark(node: yaml.Node, start: Any, end: Any) -> None:
    node.start_mark, node.end_mark = start, end
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            _mark(k, start, end)
            _mark(v, start, end)
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            _mark(v, start, end)


def _index(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value if isinstance(key, yaml.ScalarNode) else str(key.value)
            lines[path + (k,)] = key.start_mark.line + 1
            _index_children(value, path + (k,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _index_children(item, path + (i,), lines)


def _index_children(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        # keep the key's line for the path itself; index the children
        saved = lines.get(path)
        _index(node, path, lines)
        if saved is not None:
            lines[path] = saved


def _check_duplicate_keys(node: yaml.Node, path: Path_, src: YamlSource) -> None:
    """PyYAML silently keeps the last duplicate key; users mean a mistake."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            k = str(key.value)
            if k in seen:
                raise ConfigError(
                    src.file, key.start_mark.line + 1, format_path(path + (k,)), "duplicate key"
                )
            seen.add(k)
            _check_duplicate_keys(value, path + (k,), src)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, path + (i,), src)
