#!/usr/bin/env python3
"""The crate's module graph, read from the `use` lines and inline paths of
src/, and a check that it has no cycle.

    scripts/module-graph.py            # check: exit 1 and print every cycle
    scripts/module-graph.py --edges    # every edge, file module to file module
    scripts/module-graph.py --layers   # edges between rooms (auth's sub-rooms apart)

A module is a file (`src/auth/login.rs` is `auth::login`). A path such as
`crate::auth::SecretKey` or `super::Auth` points at the longest prefix that
is a module (`auth`, the file `src/auth/mod.rs`). Edges between a module and
its own ancestors or descendants are containment (`mod login;`, `impl Auth`
blocks in a child, a parent's re-export), not dependencies, and are left out;
every other edge counts, and a cycle among them fails the check, as does a
cycle among the top-level rooms (`auth`, `store`, `http`, ...) each taken
whole.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"


def module_of(path: Path) -> tuple:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    if parts in (["lib"],):
        return ()
    return tuple(parts)


def in_the_library(path: Path) -> bool:
    """Not the binary crate (src/main.rs and its src/commands/, which reach
    the library as `latchkey::`) and not a unit-test file (`mod tests;`
    under `#[cfg(test)]`, like the inline test modules `strip` drops)."""
    return module_of(path)[:1] not in (("main",), ("commands",)) and path.name != "tests.rs"


def strip(text: str) -> str:
    """The code without comments, strings and `#[cfg(test)]` modules."""
    token = re.compile(
        r'//[^\n]*|/\*.*?\*/|\br(#*)"(?:.|\n)*?"\1|"(?:\\.|[^"\\])*"|' + r"'(?:\\.|[^'\\])'",
        re.S,
    )
    text = token.sub(lambda m: '""' if m.group(0)[0] in "r\"" else " ", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def paths_in(code: str):
    """Every `crate::a::b`, `super::a`, `self::a` path, with `use` groups expanded."""
    for m in re.finditer(r"\buse\s+([^;]+);", code):
        # `a::b as c` names `a::b`.
        yield from expand(re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", m.group(1))))
    body = re.sub(r"\buse\s+[^;]+;", "", code)
    for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", body):
        yield m.group(1)


def expand(tree: str):
    """`a::{b, c::{d}}` → `a::b`, `a::c::d`."""
    if "{" not in tree:
        yield tree
        return
    head, rest = tree.split("{", 1)
    inner = rest[: rest.rindex("}")]
    depth, start = 0, 0
    for i, ch in enumerate(inner + ","):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            part = inner[start:i]
            start = i + 1
            if part:
                yield from expand(head + part)


def resolve(module: tuple, path: str, modules: set):
    parts = path.split("::")
    if parts[0] == "crate":
        base, parts = [], parts[1:]
    else:
        # `self` is this file's module, `super` its parent, in a `mod.rs`
        # as in any other file.
        base = list(module)
        while parts and parts[0] in ("super", "self"):
            if parts[0] == "super":
                base = base[:-1]
            parts = parts[1:]
    full = base + parts
    for n in range(len(full), -1, -1):
        if tuple(full[:n]) in modules:
            return tuple(full[:n])
    return None


def graph():
    files = {module_of(p): p for p in ROOT.rglob("*.rs") if in_the_library(p)}
    modules = set(files)
    edges = set()
    for module, path in files.items():
        code = strip(path.read_text())
        for p in paths_in(code):
            target = resolve(module, p, modules)
            if target is None or target == module:
                continue
            related = target[: len(module)] == module or module[: len(target)] == target
            if not related:
                edges.add((module, target))
    return modules, edges


def name(m: tuple) -> str:
    return "::".join(m) or "crate"


def cycles(modules, edges):
    """Strongly connected components of more than one module (Tarjan)."""
    succ = {m: sorted(t for s, t in edges if s == m) for m in modules}
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for m in sorted(modules):
        if m not in index:
            visit(m)
    return out


def main():
    modules, edges = graph()
    if "--edges" in sys.argv:
        for s, t in sorted(edges):
            print(f"{name(s)} -> {name(t)}")
        return 0
    if "--layers" in sys.argv:
        top = lambda m: m[:1] if m[:1] != ("auth",) else m[:2] if len(m) > 1 else m
        lifted = sorted({(top(s), top(t)) for s, t in edges if top(s) != top(t)})
        for s, t in lifted:
            print(f"{name(s)} -> {name(t)}")
        return 0
    # Files first, then the top-level rooms (`auth`, `store`, `http`, ...),
    # each taken whole: a room may not depend on one that depends on it.
    rooms = {m[:1] for m in modules if m}
    room_edges = {(s[:1], t[:1]) for s, t in edges if s[:1] != t[:1] and s and t}
    failed = False
    for level, (nodes, arrows) in (("file", (modules, edges)), ("room", (rooms, room_edges))):
        for comp in cycles(nodes, arrows):
            failed = True
            inner = sorted((s, t) for s, t in arrows if s in comp and t in comp)
            print(f"{level} cycle: " + ", ".join(f"{name(s)} -> {name(t)}" for s, t in inner))
    if failed:
        return 1
    print(f"module graph: {len(modules)} modules, {len(edges)} edges, {len(rooms)} rooms; no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
