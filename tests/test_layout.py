"""The layout of the package: minigen's modules import each other without a cycle, so that
every import can stand at the top of its module (none hidden inside a function to break a
loop), and any module can be imported first."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# setup.py installs kernels/ as minigen.kernels
PACKAGES = {"minigen": ROOT / "minigen", "minigen.kernels": ROOT / "kernels"}


def modules():
    """{dotted name: path} of every module of minigen."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package,) + parts)] = path
    return found


def imports(name, path, known):
    """The modules of minigen that the module `name` imports, anywhere in its body: a
    `from P import a` imports P.a where that is a module, P otherwise."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        else:
            continue
        yield from (target for target in targets if target in known and target != name)


def find_cycle(graph):
    """One import cycle as a list of modules (the first repeated at the end), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for child in sorted(graph[node]):
            if state.get(child) == "open":
                return stack[stack.index(child):] + [child]
            if child not in state:
                cycle = visit(child)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_modules_import_each_other_without_a_cycle():
    known = modules()
    graph = {name: set(imports(name, path, known)) for name, path in known.items()}
    assert "minigen.flows.coupling" in graph["minigen.flows.dequant"]  # the graph is read
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_cycle_is_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
