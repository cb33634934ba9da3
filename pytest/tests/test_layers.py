"""The harness's packages are the pipeline's layers, and a module imports
only from its own layer or one below: a host knows nothing of consoles, a
console nothing of pipelines. LAYERS is the one statement of the order."""
import ast

from xenboot.core import paths

PACKAGE = paths.REPO / "pytest" / "xenboot"
# Lowest first. The entry points (cli, __main__, the pytest plugin) sit above
# every layer as the top-level modules.
LAYERS = ("core", "judge", "guest", "host", "console", "build", "image", "report", "pipeline", "testing")
TOP = len(LAYERS)
# A flat package had 32 modules side by side; what stays at the top is the
# entry points and little else.
MAX_TOP_MODULES = 12


def layer(parts):
    """The layer of xenboot.PARTS: its package's, or TOP for a top-level module."""
    return LAYERS.index(parts[0]) if parts and parts[0] in LAYERS else TOP


def imported(tree):
    """(line, dotted name) of every xenboot module or package the tree imports,
    in functions too."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from xenboot import inputs` names the module, not the package.
            names = ([f"{node.module}.{alias.name}" for alias in node.names] if node.module == "xenboot"
                     else [node.module])
        else:
            continue
        for name in names:
            if name.split(".")[0] == "xenboot":
                yield node.lineno, name


def test_every_import_points_down_or_sideways():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        own = layer(parts[:-1])
        for line, name in imported(ast.parse(path.read_text(), str(path))):
            target = layer(name.split(".")[1:])
            if target > own:
                upward.append(f"{path.relative_to(PACKAGE)}:{line}: {LAYERS[own]} imports {name} "
                              f"({'top level' if target == TOP else LAYERS[target]})")
    assert not upward, "imports that point up the layers " + " < ".join(LAYERS) + ":\n" + "\n".join(upward)


def test_every_package_is_a_layer_and_few_modules_stay_on_top():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(LAYERS), "a package not in LAYERS (or a layer with no package)"
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= MAX_TOP_MODULES, top
