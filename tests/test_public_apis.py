"""sqeval uses its dependencies through their public APIs only: no private module or name
of another package is imported or reached through an attribute, no extension file is
loaded by path, and nothing is written into ``sys.modules``. A scan of the package's
source, itself tested on the forms it must catch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sqeval"
LOADERS = {"ExtensionFileLoader", "SourceFileLoader", "spec_from_file_location",
           "spec_from_loader", "module_from_spec", "load_dynamic"}
DOCUMENTED = {"os._exit"}  # the standard library's documented names with an underscore
WRITES = {"setdefault", "update", "pop", "popitem", "clear", "__setitem__", "__delitem__"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_sys_modules(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "modules"
            and isinstance(node.value, ast.Name) and node.value.id == "sys")


def violations(source: str, where: str = "<code>") -> list[str]:
    """What in ``source`` reaches past another package's public API, one line each."""
    tree = ast.parse(source)
    found = []
    external = set()  # local names bound to another package's modules
    for node in ast.walk(tree):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "sqeval":
                    external.add(alias.asname or alias.name.split(".")[0])
                    if any(_private(part) for part in alias.name.split(".")):
                        found.append(f"{line}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module.split(".")[0] not in ("sqeval", "__future__")):
            if any(_private(part) for part in node.module.split(".")):
                found.append(f"{line}: from {node.module} import ...")
            for alias in node.names:
                external.add(alias.asname or alias.name)
                if alias.name in LOADERS:
                    found.append(f"{line}: {alias.name} (loads a module by file)")
                if _private(alias.name):
                    found.append(f"{line}: from {node.module} import {alias.name}")
        elif isinstance(node, (ast.Name, ast.Attribute)):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in LOADERS:
                found.append(f"{line}: {name} (loads a module by file)")
        if isinstance(node, ast.Call):
            func = node.func
            callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if callee in ("import_module", "__import__") and node.args and isinstance(
                    node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                target = node.args[0].value
                if not target.startswith(".") and target.split(".")[0] != "sqeval" and any(
                        _private(part) for part in target.split(".")):
                    found.append(f"{line}: {callee}({target!r})")
            if isinstance(func, ast.Attribute) and func.attr in WRITES and _is_sys_modules(
                    func.value):
                found.append(f"{line}: sys.modules.{func.attr}(...)")
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [
                node.target]
            for target in targets:
                if isinstance(target, ast.Subscript) and _is_sys_modules(target.value):
                    found.append(f"{line}: writes sys.modules[...]")
    own = _own_names(tree)
    for node in ast.walk(tree):  # private attributes of anything but sqeval's own objects
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if not (isinstance(root, ast.Name) and root.id in own) and (
                    ast.unparse(node) not in DOCUMENTED):
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                "getattr", "hasattr", "setattr", "delattr") and len(node.args) >= 2 and (
                isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
                and _private(node.args[1].value)):
            root = node.args[0]
            while isinstance(root, ast.Attribute):
                root = root.value
            if not (isinstance(root, ast.Name) and root.id in own):
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def _own_names(tree: ast.AST) -> set[str]:
    """Names whose private attributes are sqeval's own: ``self``, ``cls``, sqeval's modules
    and names imported from them, and the classes and functions this file defines."""
    own = {"self", "cls"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (
                node.module or "").split(".")[0] == "sqeval"):
            own.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            own.update(alias.asname or alias.name for alias in node.names
                       if alias.name.split(".")[0] == "sqeval")
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.col_offset == 0:
            own.add(node.name)
    return own


def test_the_package_uses_public_apis_only():
    found = [problem for path in sorted(PACKAGE.rglob("*.py"))
             for problem in violations(path.read_text(encoding="utf-8"),
                                       str(path.relative_to(PACKAGE.parent)))]
    assert not found, "\n".join(found)


def test_the_scan_finds_what_sqeval_0_5_did():
    """sqeval 0.5.0's dsp.py loaded scipy's compiled modules from their files and read
    numpy's private Cephes coefficients: each of those lines is found."""
    found = violations(OLD_DSP)
    for what in ("from numpy.lib import _function_base_impl", "cephes._i0A",
                 "ExtensionFileLoader", "spec_from_file_location", "writes sys.modules"):
        assert any(what in problem for problem in found), (what, found)


OLD_DSP = """
def _i0(x):
    from numpy.lib import _function_base_impl as cephes
    series = cephes._i0A
def compiled_module(package, name):
    import importlib.machinery
    import importlib.util
    import sys
    loader = importlib.machinery.ExtensionFileLoader(qualified, str(path))
    spec = importlib.util.spec_from_file_location(qualified, str(path), loader=loader)
    sys.modules[qualified] = module
"""


@pytest.mark.parametrize("code", [
    "from numpy.lib import _function_base_impl",
    "from numpy.lib._function_base_impl import _i0A",
    "import numpy._core as core",
    "from scipy.signal._upfirdn_apply import _apply",
    "import numpy as np\nx = np.lib._function_base_impl._i0A",
    "import numpy as np\nx = np._core.multiarray",
    "import scipy.signal\nscipy.signal._upfirdn_apply._apply(1)",
    "from numpy import lib\ny = lib._function_base_impl",
    "from visqol import VisqolApi\napi = VisqolApi()\nm = api._manager.quality_mapper",
    "import typer\nc = getattr(typer.core, '_click', None)",
    "import importlib\nimportlib.import_module('scipy.linalg._solve_toeplitz')",
    "import importlib.machinery\nimportlib.machinery.ExtensionFileLoader('a', 'b')",
    "from importlib.util import spec_from_file_location",
    "import sys\nsys.modules['scipy.linalg._x'] = object()",
    "import sys\nsys.modules.setdefault('x', object())",
    "import sys\ndel sys.modules['x']",
])
def test_the_scan_finds_each_way_past_a_public_api(code):
    assert violations(code), code


@pytest.mark.parametrize("code", [
    "from . import _checks\nfrom ._checks import MetricError",
    "from sqeval.metrics import _checks",
    "import numpy as np\nx = np.lib.stride_tricks.sliding_window_view",
    "import sys\nmain = sys.modules.get('__main__')",
    "import numpy as np\nclass A:\n    def f(self):\n        return self._cache",
    "from __future__ import annotations",
    "import numpy as np\nn = np.__version__",
])
def test_the_scan_lets_public_and_own_names_be(code):
    assert not violations(code), violations(code)
