"""python -m fastprop._apidoc > docs/api.md: the API reference, written from the code itself.

Every public name (fastprop.__all__ and the __all__ of the public submodules in MODULES) with its
signature and the first paragraph of its docstring; a class with its attributes, properties and
methods (a private base class's included); then the types the signatures name, from
fastprop._typing. tests/test_apidoc.py fails when docs/api.md is not what this prints.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import re
import sys
import typing
from types import ModuleType
from typing import Any

MODULES = ("fastprop", "fastprop.callbacks", "fastprop.schedules", "fastprop.metrics",
           "fastprop.datasets", "fastprop.kernels", "fastprop.io", "fastprop.distributed",
           "fastprop.sparse", "fastprop.torch_interop", "fastprop.onnx", "fastprop.sklearn")
COMMAND = "python -m fastprop._apidoc > docs/api.md"
WIDTH = 96


def paragraph(obj: object) -> str:
    """The first paragraph of an object's own docstring, on one line ('' without one)."""
    doc = obj.__doc__ if isinstance(obj.__doc__, str) else ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def wrapped(text: str, indent: int, hanging: int = 0) -> list[str]:
    """`text` in lines of at most WIDTH columns, indented by `indent` spaces (the lines after
    the first by `hanging` more)."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        pad = indent + (hanging if lines else 0)
        if line and pad + len(line) + 1 + len(word) > WIDTH:
            lines.append(" " * pad + line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + ([" " * (indent + (hanging if lines else 0)) + line] if line else [])


def call(head: str, parts: list[str], tail: str, indent: int = 0, brackets: str = "()"
         ) -> list[str]:
    """head(part, part, ...)tail, the parts wrapped under the opening bracket."""
    start, end = brackets[0], brackets[1]
    one = f"{' ' * indent}{head}{start}{', '.join(parts)}{end}{tail}"
    if len(one) <= WIDTH or not parts:
        return [one]
    pad = " " * (indent + len(head) + 1)
    lines: list[str] = []
    line = f"{' ' * indent}{head}{start}"
    for k, part in enumerate(parts):
        piece = part + (", " if k < len(parts) - 1 else f"{end}{tail}")
        if line.strip() != f"{head}{start}".strip() and len(line) + len(piece.rstrip()) > WIDTH:
            lines.append(line.rstrip())
            line = pad
        line += piece
    return lines + [line.rstrip()]


def annotation(value: object) -> str:
    if isinstance(value, typing.ForwardRef):  # a NamedTuple's field
        return value.__forward_arg__
    return value if isinstance(value, str) else inspect.formatannotation(value)


def value(obj: object) -> str:
    """A value as the page shows it: functions and classes by name (never an address)."""
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{k!r}: {value(v)}" for k, v in obj.items()) + "}"
    if inspect.isroutine(obj) or inspect.isclass(obj):
        return str(obj.__name__)
    return repr(obj)


def assignment(name: str, obj: object) -> list[str]:
    """name = value, a dict wrapped between its items."""
    if isinstance(obj, dict) and obj:
        return call(f"{name} = ", [f"{k!r}: {value(v)}" for k, v in obj.items()], "", 0, "{}")
    return wrapped(f"{name} = {value(obj)}", 0, 4)


def parameters(fn: Any, drop_first: bool, annotations: dict[str, Any]) -> tuple[list[str], str]:
    """([the parameters as text], ' -> return type') of a callable's signature; private ones
    (a leading underscore) left out, and the first with drop_first (self, cls or the model)."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())[1 if drop_first else 0:]
    parts, starred = [], False
    for p in params:
        if p.name.startswith("_"):
            continue
        if p.kind is p.KEYWORD_ONLY and not starred:
            parts.append("*")
        starred = starred or p.kind in (p.KEYWORD_ONLY, p.VAR_POSITIONAL)
        stars = "*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else ""
        ann = p.annotation if p.annotation is not p.empty else annotations.get(p.name, p.empty)
        text = stars + p.name + ("" if ann is p.empty else f": {annotation(ann)}")
        if p.default is not p.empty:
            text += f" = {value(p.default)}" if ann is not p.empty else f"={value(p.default)}"
        parts.append(text)
    returns = sig.return_annotation
    return parts, "" if returns is sig.empty else f" -> {annotation(returns)}"


def documented(lines: list[str], obj: object, indent: int) -> list[str]:
    return lines + wrapped(paragraph(obj), indent)


def member(cls: type, name: str, attr: Any) -> list[str]:
    """A class member's lines: an attribute with its type, a property, a method."""
    declared = cls.__dict__.get("__annotations__", {})
    if isinstance(attr, property):
        kind = annotation(declared.get(name) or attr.fget.__annotations__.get("return", ""))
        settable = ", settable" if attr.fset is not None else ""
        head = f"    .{name}" + (f": {kind}" if kind else "") + f"  (property{settable})"
        return documented([head], attr.fget if attr.fget.__doc__ else attr, 8)
    if isinstance(attr, (staticmethod, classmethod)):
        parts, tail = parameters(attr.__func__, isinstance(attr, classmethod), {})
        return documented(call(f".{name}", parts, tail, 4), attr.__func__, 8)
    if inspect.isfunction(attr):
        parts, tail = parameters(attr, True, {})
        return documented(call(f".{name}", parts, tail, 4), attr, 8)
    if not (attr is inspect.Parameter.empty or isinstance(attr, (bool, int, float, str, tuple))):
        return []  # not fastprop's (scikit-learn's metadata-request methods, say)
    kind = f": {annotation(declared[name])}" if name in declared else ""
    shown = "" if attr is inspect.Parameter.empty else f" = {value(attr)}"
    return [f"    .{name}{kind}{shown}"]


def members(cls: type) -> list[str]:
    """The public members of a class and of its private fastprop base classes, in the order
    they are defined: declared attributes first."""
    own = [c for c in cls.__mro__ if c is cls or (c.__name__.startswith("_") and
                                                 c.__module__.startswith("fastprop"))]
    lines: list[str] = []
    seen = set(getattr(cls, "_fields", ())) if issubclass(cls, tuple) else set()  # in its call
    for c in own:
        declared = list(c.__dict__.get("__annotations__", {}))
        for name in declared + [n for n in c.__dict__ if n not in declared]:
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            lines += member(c, name, c.__dict__.get(name, inspect.Parameter.empty))
    return lines


def public_base(cls: type) -> type:
    """`cls`, or for one of fastprop's private classes the first public class it derives from."""
    while cls.__name__.startswith("_") and cls.__module__.startswith("fastprop"):
        cls = cls.__bases__[0]
    return cls


def class_block(cls: type, name: str) -> list[str]:
    """class name(bases), then its constructor's call (unless it takes nothing), its doc and
    its members."""
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        bases = ["NamedTuple"]
    else:
        bases = [b.__name__ if b.__module__.startswith("fastprop") else
                 f"{b.__module__}.{b.__name__}" for b in map(public_base, cls.__bases__)
                 if b is not object]
    lines = [f"class {name}" + (f"({', '.join(bases)})" if bases else "")]
    constructed = "__init__" in vars(cls) or "__new__" in vars(cls) or any(
        "__init__" in vars(c) for c in cls.__mro__[1:] if c.__module__.startswith("fastprop"))
    if constructed and not getattr(cls, "_is_protocol", False):
        parts, _ = parameters(cls, False, cls.__dict__.get("__annotations__", {}))
        lines += call(name, parts, "", 4)
    return documented(lines, cls, 4) + members(cls)


def entry(module: ModuleType, name: str, anchors: dict[int, str]) -> list[str]:
    """The Markdown of one public name of `module`: a heading and a text block, or a line that
    points to where it is documented already."""
    obj = getattr(module, name)
    qualname = f"{module.__name__}.{name}"
    if isinstance(obj, ModuleType):
        return wrapped(f"- [`{obj.__name__}`](#{slug(obj.__name__)}): {prose(paragraph(obj))}",
                       0, 2)
    if id(obj) in anchors:
        return [f"- `{name}`: see [{anchors[id(obj)]}](#{slug(anchors[id(obj)])})"]
    if inspect.isclass(obj) or inspect.isroutine(obj):
        anchors[id(obj)] = qualname
    if inspect.isclass(obj):
        block = class_block(obj, name)
    elif inspect.isroutine(obj):
        parts, tail = parameters(obj, False, {})
        block = documented(call(name, parts, tail), obj, 4)
    else:
        block = assignment(name, obj)
    return ["", f"### {qualname}", "", "```text"] + block + ["```", ""]


def types_section() -> list[str]:
    """The aliases of fastprop._typing, as the source writes them, each with its comment (an
    alias _typing imports from a module of fastprop, such as the activations' names, as that
    module writes it)."""
    import importlib
    from . import _typing
    source = open(_typing.__file__, encoding="utf-8").read()
    lines = ["## Types", ""] + wrapped(prose(paragraph(_typing)) + " Numpy's `ArrayLike` is "
                                       "anything `numpy.asarray` takes.", 0) + ["", "```text"]
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            module = importlib.import_module("fastprop." + node.module)
            text = open(module.__file__ or "", encoding="utf-8").read()
            for name in (a.name for a in node.names if a.name in _typing.__all__):
                lines += next(_alias(text, n, name) for n in ast.parse(text).body
                              if _assigns(n, name))
        elif isinstance(node, ast.Assign) and _assigns(node, *_typing.__all__):
            lines += _alias(source, node, node.targets[0].id)  # type: ignore[attr-defined]
        elif isinstance(node, ast.ClassDef) and node.name in _typing.__all__:
            lines += class_block(getattr(_typing, node.name), node.name) + [""]
    return lines[:-1] + ["```", ""]


def _assigns(node: ast.stmt, *names: str) -> bool:
    target = getattr(node, "targets", [None])[0]
    return isinstance(node, ast.Assign) and isinstance(target, ast.Name) and target.id in names


def _alias(source: str, node: ast.stmt, name: str) -> list[str]:
    """An alias's assignment, wrapped, and the comment lines above it."""
    comment: list[str] = []
    for line in reversed(source.split("\n")[:node.lineno - 1]):
        if not line.startswith("#"):
            break
        comment.insert(0, line.lstrip("# "))
    text = " ".join((ast.get_source_segment(source, node) or "").split())
    return (wrapped(text.replace("[ ", "[").replace(" ]", "]"), 0, len(name) + 3)  # under the value
            + wrapped(" ".join(comment), 4) + [""])


def slug(heading: str) -> str:
    """GitHub's anchor for a heading (as tests/test_docs.py computes it)."""
    return "".join(c for c in heading.lower() if c.isalnum() or c in "_- ").replace(" ", "-")


def prose(text: str) -> str:
    """Docstring text as Markdown prose: the characters Markdown would read escaped."""
    for c in "\\*<>[]":
        text = text.replace(c, "\\" + c)
    return text


def render() -> str:
    """docs/api.md."""
    out = ["# API reference", ""] + wrapped(
        "[README](../README.md) · every public name of fastprop, with its signature and the "
        "first paragraph of its docstring; the types the signatures name are under "
        "[Types](#types). Written from the code by `" + COMMAND + "`: edit the docstrings, "
        "not this page (`tests/test_apidoc.py` fails when it is out of date).", 0) + [""]
    out += [f"- [`{name}`](#{slug(name)})" for name in MODULES] + ["- [Types](#types)", ""]
    anchors: dict[int, str] = {}
    for name in MODULES:
        module = importlib.import_module(name)
        out += [f"## {name}", ""] + wrapped(prose(paragraph(module)), 0) + [""]
        for public in module.__all__:
            out += entry(module, public, anchors)
    out += types_section()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
