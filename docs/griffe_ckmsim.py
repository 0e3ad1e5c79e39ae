"""Griffe extension of the docs site: ckmsim's Sionna-style docstrings, read as the numpy style Griffe parses.

ckmsim's docstrings follow Sionna's (``/work/shared/STYLE.md``): ``Input`` / ``Output`` blocks with one
``name : shape, dtype`` line per tensor, reStructuredText roles (``:class:`~ckmsim.maps.grid.Grid```,
``:math:`x```) and ``.. math::`` blocks. Before Griffe parses a docstring this extension rewrites, outside
code spans:

- ``Input`` -> ``Parameters`` (``Other Parameters`` where the docstring has its own ``Parameters``),
  ``Output`` -> ``Returns``;
- ``.. math::`` blocks and ``:math:`` roles -> ``$$ ... $$`` and ``$...$`` (pymdownx.arithmatex, MathJax in
  the browser);
- ``:class:`` / ``:func:`` / ``:meth:`` / ``:mod:`` / ``:attr:`` / ``:data:`` roles -> optional autorefs:
  a link where the target is on the site, plain code where it is not;
- ``[a, b] [deg]``-like unit brackets -> escaped, so that Markdown does not read them as reference links.

The source files are not touched; only what the site shows.
"""

from __future__ import annotations

import re

import griffe

_HAS_PARAMETERS_RE = re.compile(r"^[ \t]*Parameters[ \t]*\n[ \t]*-{3,}[ \t]*$", re.M)
_MATH_INLINE_DIRECTIVE_RE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]+(?P<body>\S.*)$", re.M)
_MATH_BLOCK_RE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*\n(?P<body>(?:(?:[ \t]*\n)|(?:(?P=indent)[ \t]+.*\n?))+)",
                            re.M)
_ROLE_RE = re.compile(r":(?P<role>class|func|meth|mod|attr|data|obj|exc):`(?P<target>[^`]+)`")
_MATH_ROLE_RE = re.compile(r":math:`(?P<body>[^`]+)`")
_SUP_ROLE_RE = re.compile(r":sup:`(?P<body>[^`]+)`")
# Code spans (``x`` or `x`) and math kept as they are when escaping brackets.
_PROTECTED_RE = re.compile(r"(``.+?``|`[^`]+`|\$\$.+?\$\$|\$[^$\n]+\$|<autoref[^>]*>.*?</autoref>)", re.S)


def _math_block(match: re.Match) -> str:
    indent = match["indent"]
    lines = [line.strip() for line in match["body"].splitlines()]
    body = "\n".join(f"{indent}{line}" for line in lines if line)
    return f"{indent}$$\n{body}\n{indent}$$\n\n"


class _RoleResolver:
    """Turns one role target into the full path of a ckmsim object where it can (else the target itself)."""

    def __init__(self, obj: griffe.Object):
        self.obj = obj

    def __call__(self, match: re.Match) -> str:
        target = match["target"].strip()
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<path>[^>]+)>", target)
        if explicit:
            title, path = explicit["title"], explicit["path"]
        else:
            path = target.lstrip("~").lstrip(".")
            title = path.rsplit(".", 1)[-1] if target.startswith("~") else path
        if match["role"] in ("func", "meth"):
            title += "()"
        identifier = self._resolve(path)
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    def _resolve(self, path: str) -> str:
        head = path.split(".", 1)[0]
        scopes = [self.obj] + [parent for parent in _parents(self.obj)]
        for scope in scopes:
            try:
                resolved = scope.resolve(head)
            except (griffe.NameResolutionError, AttributeError, KeyError, ValueError):
                continue
            return resolved + path[len(head):]
        return path


def _parents(obj: griffe.Object):
    parent = obj.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _escape_brackets(text: str) -> str:
    pieces = _PROTECTED_RE.split(text)
    for i in range(0, len(pieces), 2):
        # "[-90, 90] [deg]" reads as a reference link; a second bracket after a closing one is escaped.
        pieces[i] = re.sub(r"\](\s*)\[", r"]\1\\[", pieces[i])
    return "".join(pieces)


def _plain(match: re.Match) -> str:
    target = match["target"].strip()
    explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<path>[^>]+)>", target)
    if explicit:
        return explicit["title"]
    return target.lstrip("~").lstrip(".").rsplit(".", 1)[-1] if target.startswith("~") else target.lstrip(".")


def _item_line(match: re.Match) -> str:
    """One ``name : type`` line of a section: the type is shown as code, so roles and maths become plain
    text there, and a ``name : type — description`` line is split into the type and its description."""
    indent, names, kind = match["indent"], match["names"], match["kind"]
    kind = _ROLE_RE.sub(_plain, kind)
    kind = _MATH_ROLE_RE.sub(lambda m: m["body"], kind).replace("``", "")
    kind, dash, description = kind.partition(" — ")
    line = f"{indent}{names} : {kind.rstrip()}"
    return f"{line}\n{indent}    {description}" if dash else line


_ITEM_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<names>\*{0,2}[A-Za-z_]\w*(?:, \*{0,2}[A-Za-z_]\w*)*) : (?P<kind>.+)$", re.M)


_HEADER_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<title>(?:Input|Output)(?: of .+| \(.+\)| / Output)?)[ \t]*$")
# "text::" before a literal block: the block is indented code in Markdown already; the colon stays single.
_LITERAL_RE = re.compile(r"(?<=\S)::[ \t]*$", re.M)
_UNDERLINE_RE = re.compile(r"^[ \t]*-{3,}[ \t]*$")


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _sections(lines: list[str], has_parameters: bool) -> list[str]:
    """Rewrites the Input / Output blocks: numpy sections where every entry is ``name : type``, else a bold
    title over a list of the entries (prose lines kept as they are)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        header = _HEADER_RE.match(lines[i])
        if not (header and i + 1 < len(lines) and _UNDERLINE_RE.match(lines[i + 1])):
            out.append(lines[i])
            i += 1
            continue
        indent, title = header["indent"], header["title"]
        base = len(indent)
        j = i + 2
        while j < len(lines):
            if j + 1 < len(lines) and lines[j].strip() and _UNDERLINE_RE.match(lines[j + 1]):
                break
            if not lines[j].strip() and (j + 1 >= len(lines) or (lines[j + 1].strip()
                                                                   and _indent_of(lines[j + 1]) <= base
                                                                   and not _ITEM_RE.match(lines[j + 1]))):
                break
            j += 1
        body = lines[i + 2:j]
        entries = [line for line in body if line.strip() and _indent_of(line) <= base]
        if title in ("Input", "Output") and entries and all(_ITEM_RE.match(line) for line in entries):
            name = ("Other Parameters" if has_parameters else "Parameters") if title == "Input" else "Returns"
            out += [f"{indent}{name}", f"{indent}{'-' * len(name)}"] + body
        else:
            out += [f"{indent}**{title}**", ""]
            for line in body:
                item = _ITEM_RE.match(line) if line.strip() and _indent_of(line) <= base else None
                if item:
                    out.append(f"{indent}- **{item['names']}** : {item['kind']}")
                elif line.strip() and _indent_of(line) > base:
                    out.append(f"{indent}  {line.strip()}")
                else:
                    out.append(line)
            out.append("")
        i = j
    return out


_BORDER_RE = re.compile(r"^(?P<indent>[ \t]*)=+(?: +=+)+[ \t]*$")


def _split_row(line: str, starts: list[int]) -> list[str]:
    """A simple-table row cut at the column starts, each cut moved right past a word that overflows it."""
    cells, begin = [], starts[0]
    for start in starts[1:]:
        cut = start
        while 0 < cut < len(line) and line[cut - 1] != " " and line[cut] != " ":
            cut += 1
        cells.append(line[begin:cut].strip())
        begin = cut
    cells.append(line[begin:].strip())
    return cells


def _rst_tables(lines: list[str]) -> list[str]:
    """reStructuredText simple tables (``=== ===`` borders, one header row) -> Markdown tables. A row whose
    first cell is empty, or follows a first cell ending in a comma, continues the row above."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        border = _BORDER_RE.match(lines[i])
        ends = [j for j in range(i + 1, min(i + 400, len(lines))) if lines[j].strip() == lines[i].strip()]
        if not border or len(ends) < 2 or ends[0] != i + 2:
            out.append(lines[i])
            i += 1
            continue
        starts = [m.start() for m in re.finditer(r"=+", lines[i])]
        header = _split_row(lines[i + 1], starts)
        rows: list[list[str]] = []
        for line in lines[i + 3:ends[1]]:
            if not line.strip():
                continue
            cells = _split_row(line, starts)
            if rows and (not cells[0] or rows[-1][0].endswith(",")):
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells)]
            else:
                rows.append(cells)
        indent = border["indent"]
        out += ["", indent + "| " + " | ".join(header) + " |", indent + "|" + "---|" * len(header)]
        out += [indent + "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        out.append("")
        i = ends[1] + 1
    return out


_ITEM_SECTIONS = ("Parameters", "Other Parameters", "Returns", "Yields", "Receives", "Raises", "Warns", "Attributes")


def _is_header(lines: list[str], k: int) -> bool:
    return k + 1 < len(lines) and bool(lines[k].strip()) and bool(_UNDERLINE_RE.match(lines[k + 1]))


def _hoist_prose(lines: list[str]) -> list[str]:
    """Griffe reads a numpy item section up to the next section: prose that follows a section's items (a
    blank line, then a line at the section's indent that is not an item) moves above the first section."""
    out: list[str] = []
    hoisted: list[str] = []
    first_section = None
    i = 0
    while i < len(lines):
        if not (_is_header(lines, i) and lines[i].strip() in _ITEM_SECTIONS):
            out.append(lines[i])
            i += 1
            continue
        if first_section is None:
            first_section = len(out)
        base = _indent_of(lines[i])
        out += lines[i:i + 2]
        j = i + 2
        while j < len(lines) and not _is_header(lines, j):
            line = lines[j]
            if not line.strip():
                following = lines[j + 1] if j + 1 < len(lines) else ""
                if following.strip() and _indent_of(following) <= base and not _ITEM_RE.match(following) \
                        and not _is_header(lines, j + 1):
                    break
            out.append(line)
            j += 1
        k = j
        while k < len(lines) and not _is_header(lines, k):
            k += 1
        hoisted += lines[j:k]
        i = k
    if first_section is not None and any(line.strip() for line in hoisted):
        out[first_section:first_section] = hoisted + [""]
    return out


def rewrite_docstring(text: str, obj: griffe.Object | None = None) -> str:
    """``text`` (one docstring) rewritten for the site; ``obj`` resolves role targets in its scope."""
    has_parameters = bool(_HAS_PARAMETERS_RE.search(text))
    text = "\n".join(_hoist_prose(_sections(_rst_tables(text.splitlines()), has_parameters)))
    text = _ITEM_RE.sub(_item_line, text)
    text = _LITERAL_RE.sub(":", text)
    text = _MATH_BLOCK_RE.sub(_math_block, text)
    text = _MATH_INLINE_DIRECTIVE_RE.sub(lambda m: f"{m['indent']}$$\n{m['indent']}{m['body']}\n{m['indent']}$$", text)
    text = _MATH_ROLE_RE.sub(lambda m: f"${m['body']}$", text)
    text = _SUP_ROLE_RE.sub(lambda m: f"<sup>{m['body']}</sup>", text)
    if obj is not None:
        text = _ROLE_RE.sub(_RoleResolver(obj), text)
    else:
        text = _ROLE_RE.sub(lambda m: f"<code>{_plain(m)}</code>", text)
    return _escape_brackets(text)


class CkmsimDocstrings(griffe.Extension):
    """Rewrites every docstring of the loaded package once it is loaded (so that names resolve)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        self._walk(pkg, seen=set())

    def _walk(self, obj: griffe.Object, seen: set) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = rewrite_docstring(obj.docstring.value, obj)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)
