"""A griffe extension that shows minidl's reStructuredText docstrings as Markdown.

minidl's docstrings are written for ``help()`` and doctest: roles such as
:class:`~minidl.nn.Linear`, ``double backquotes`` and ``>>>`` examples. mkdocstrings
renders docstrings as Markdown, where ``>>>`` would start a quotation. This extension
rewrites each docstring before it is parsed: a role becomes inline code (with ``~``
keeping the last name only, as Sphinx does), double backquotes become single ones, and
every run of ``>>>`` lines with their output becomes a ``pycon`` block. Loaded by
mkdocs.yml (``extensions: [docs/griffe_rst.py]``); the site's build is its test.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`(~?)([^`]+)`")
_DOUBLE = re.compile(r"(?<!`)``([^`]+?)``(?!`)")


def _role(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _fenced(lines: list[str]) -> list[bool]:
    """For each line, whether it is a fence or inside a fenced block: left as it is."""
    flags, inside = [], False
    for line in lines:
        fence = line.lstrip().startswith("```")
        flags.append(inside or fence)
        inside ^= fence
    return flags


def _fence_doctests(lines: list[str]) -> list[str]:
    """Wraps each doctest (prompt lines and the output up to a blank line) in a fence."""
    out: list[str] = []
    fenced = _fenced(lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        if fenced[i] or not line.lstrip().startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if out and out[-1].strip():
            out.append("")
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")
    return out


def _literal_blocks(lines: list[str]) -> list[str]:
    """An RST literal block (a paragraph ending in ``::`` and an indented block) as a fence."""
    out: list[str] = []
    fenced = _fenced(lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if fenced[i - 1] or not line.rstrip().endswith("::") or line.strip() == "::":
            continue
        out[-1] = line.rstrip()[:-1]  # "in order::" reads "in order:"
        base = len(line) - len(line.lstrip())
        j = i
        while j < len(lines) and not lines[j].strip():
            j += 1
        block: list[str] = []
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > base
        ):
            block.append(lines[j])
            j += 1
        while block and not block[-1].strip():
            block.pop()
        if not block:
            continue
        out += ["", " " * base + "```text", *block, " " * base + "```", ""]
        i = j
    return out


def rst_to_markdown(text: str) -> str:
    r"""The Markdown form of one docstring (see the module's docstring).

    >>> rst_to_markdown("See :class:`~minidl.nn.Linear` and ``x``.")
    'See `Linear` and `x`.'
    >>> once = rst_to_markdown(">>> 1 + 1\n2")
    >>> once.split("\n")
    ['```pycon', '>>> 1 + 1', '2', '```']
    >>> rst_to_markdown(once) == once
    True
    """
    text = _ROLE.sub(_role, text)
    text = _DOUBLE.sub(r"`\1`", text)
    lines = _literal_blocks(text.split("\n"))
    lines = _fence_doctests(lines)
    return "\n".join(lines)


_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: griffe.ParameterKind.positional_only,
    inspect.Parameter.POSITIONAL_OR_KEYWORD: griffe.ParameterKind.positional_or_keyword,
    inspect.Parameter.VAR_POSITIONAL: griffe.ParameterKind.var_positional,
    inspect.Parameter.KEYWORD_ONLY: griffe.ParameterKind.keyword_only,
    inspect.Parameter.VAR_KEYWORD: griffe.ParameterKind.var_keyword,
}


def _made_function(module: griffe.Module, name: str) -> griffe.Function | None:
    """The griffe Function for ``module.name`` when the source builds it by a call.

    ``minidl.exp`` and its kind are made by ``_function_of(Tensor.exp, "exp")``: read
    statically, they are attributes without a docstring. The imported function knows
    its signature (that of the Tensor method, ``self`` being the input) and docstring.
    """
    value = getattr(importlib.import_module(module.path), name, None)
    method = getattr(value, "__wrapped__", None)
    if not inspect.isfunction(value) or method is None or not method.__doc__:
        return None
    parameters = []
    for i, p in enumerate(inspect.signature(method).parameters.values()):
        default = None if p.default is inspect.Parameter.empty else repr(p.default)
        parameters.append(
            griffe.Parameter("input" if i == 0 else p.name, kind=_KINDS[p.kind], default=default)
        )
    owner = method.__qualname__.split(".")[0]
    doc = (
        f"The function form of `{owner}.{method.__name__}`: `minidl.{name}(input, ...)` is "
        f"`input.{method.__name__}(...)`.\n\n{inspect.cleandoc(method.__doc__)}"
    )
    function = griffe.Function(name, parameters=griffe.Parameters(*parameters))
    function.docstring = griffe.Docstring(doc, parent=function)
    return function


class RstToMarkdown(griffe.Extension):
    """Rewrites every docstring of the loaded objects once the tree is complete."""

    def on_module_members(self, *, mod: griffe.Module, **kwargs: Any) -> None:
        if not mod.path.startswith("minidl"):
            return
        for name, member in list(mod.members.items()):
            if member.is_alias or not member.is_attribute or member.docstring is not None:
                continue
            if not str(member.value or "").startswith("_function_of("):
                continue
            function = _made_function(mod, name)
            if function is not None:
                mod.set_member(name, function)

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
