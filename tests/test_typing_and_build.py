"""How fastreply was built and installed: which implementation runs, the GIL on
free-threaded CPython, the typing files shipped, and the compiled module's stub
against the pure-Python reference.

Every test here is collected on every build and asserts what is right for it
(GIL or free-threaded, compiled module required or not), so a wheel built by
cibuildwheel runs them all.
"""

from __future__ import annotations

import ast
import importlib
import importlib.resources
import inspect
import os
import subprocess
import sys
import sysconfig
from types import ModuleType
from typing import Any

import pytest

import fastreply
from fastreply import _parser_py
from implementations import c_extensions_enabled

FREE_THREADED_BUILD = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def _clean_env() -> dict[str, str]:
    """The environment for a child interpreter: no GIL override from outside."""
    env = dict(os.environ)
    env.pop("PYTHON_GIL", None)
    return env


# -- which implementation runs ---------------------------------------------


def test_implementation_matches_what_was_asked(selected: ModuleType) -> None:
    """The guard against a build that silently fell back to pure Python (the
    ``selected`` fixture checks every public name against what this run
    asked for)."""
    assert fastreply.IMPLEMENTATION in ("cython", "python")
    assert fastreply.Reply.__module__ == fastreply.ReplyParser.__module__ == selected.__name__


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython only")
def test_environment_variable_forces_the_fallback_in_a_fresh_interpreter() -> None:
    env = _clean_env()
    env["FASTREPLY_NO_EXTENSIONS"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", "import fastreply; print(fastreply.IMPLEMENTATION)"],
        env=env, capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "python"


# -- free-threaded CPython ----------------------------------------------------


def test_gil_state_after_import(request: pytest.FixtureRequest) -> None:
    """On a free-threaded build, importing fastreply (and its compiled module,
    when that is required) must leave the GIL disabled: an extension that does
    not declare itself free-threading compatible would turn it back on.  On a
    regular build the GIL is simply on."""
    imports = "import fastreply"
    if c_extensions_enabled(request.config):
        imports += "; import fastreply._parser_c, fastreply._classify_c"
    code = (
        "import sys, warnings; warnings.simplefilter('error'); "
        f"{imports}; "
        "print(getattr(sys, '_is_gil_enabled', lambda: True)())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    gil_enabled = out.stdout.strip()
    if FREE_THREADED_BUILD:
        assert gil_enabled == "False", "importing fastreply enabled the GIL"
    else:
        assert gil_enabled == "True"


def test_parsers_in_threads() -> None:
    # One parser per thread plus one shared by all (fed nothing): on a
    # free-threaded build this runs the critical sections for real.
    import threading

    parser = fastreply.ReplyParser()
    stream = b"250-mx.example.org\r\n250 PIPELINING\r\n" * 200
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        local = fastreply.ReplyParser()
        count = 0
        for i in range(0, len(stream), 7):
            count += len(local.feed(stream[i : i + 7]))
            parser.feed_codes(b"")
        with lock:
            results.append(count)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 4


# -- typing files shipped -------------------------------------------------------


def test_py_typed_is_shipped() -> None:
    assert importlib.resources.files("fastreply").joinpath("py.typed").is_file()


def test_stub_of_the_compiled_module_is_shipped() -> None:
    assert importlib.resources.files("fastreply").joinpath("_parser_c.pyi").is_file()


# -- the stub against the reference -------------------------------------------


def _stub_tree() -> ast.Module:
    text = importlib.resources.files("fastreply").joinpath("_parser_c.pyi").read_text(
        encoding="utf-8"
    )
    return ast.parse(text)


def _stub_class_members(tree: ast.Module, name: str) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return {
                item.name
                for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            }
    raise AssertionError(f"class {name} is not in the stub")


def _public_members(cls: type) -> set[str]:
    return {
        name
        for name in vars(cls)
        if not name.startswith("_") or name in {"__init__", "__eq__", "__hash__", "__reduce__"}
    }


@pytest.mark.parametrize("name", ["Reply", "ReplyParser"])
def test_stub_declares_the_reference_surface(name: str) -> None:
    reference = _public_members(getattr(_parser_py, name))
    declared = _stub_class_members(_stub_tree(), name)
    assert reference <= declared, f"missing from the stub: {sorted(reference - declared)}"
    extra = {member for member in declared - reference if not member.startswith("_")}
    assert not extra, f"the stub declares what the reference lacks: {sorted(extra)}"


def test_stub_declares_the_module_names() -> None:
    tree = _stub_tree()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    assert set(_parser_py.__all__) | {"__all__"} <= names
    stub_all = next(
        node.value for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
    )
    assert sorted(ast.literal_eval(stub_all)) == sorted(_parser_py.__all__)


def test_stub_signatures_follow_the_reference() -> None:
    """Parameter names and kinds of the public methods agree with the reference
    (the types are mypy's business; stubtest holds the stub to the binary)."""
    tree = _stub_tree()
    for cls_name in ("Reply", "ReplyParser"):
        reference = getattr(_parser_py, cls_name)
        stub_cls = next(
            n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name
        )
        for item in stub_cls.body:
            if not isinstance(item, ast.FunctionDef):
                continue
            if item.name.startswith("__") and item.name != "__init__":
                continue
            runtime = inspect.getattr_static(reference, item.name)
            if isinstance(runtime, property):
                continue
            if isinstance(runtime, classmethod):
                runtime = runtime.__func__
            params = list(inspect.signature(runtime).parameters.values())
            stub_params = [a.arg for a in item.args.args] + [a.arg for a in item.args.kwonlyargs]
            assert stub_params == [p.name for p in params], f"{cls_name}.{item.name}"
            kwonly = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
            assert [a.arg for a in item.args.kwonlyargs] == kwonly, f"{cls_name}.{item.name}"


def test_stub_of_the_compiled_classifier_follows_the_reference() -> None:
    from fastreply import _classify_py

    assert importlib.resources.files("fastreply").joinpath("_classify_c.pyi").is_file()
    stub = importlib.resources.files("fastreply").joinpath("_classify_c.pyi").read_text("utf-8")
    tree = ast.parse(stub)
    names = {node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    assert set(_classify_py.__all__) <= names
    stub_classify = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                         and n.name == "classify")
    ref = inspect.signature(_classify_py.classify)
    assert [a.arg for a in stub_classify.args.args] == [
        p.name for p in ref.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert [a.arg for a in stub_classify.args.kwonlyargs] == [
        p.name for p in ref.parameters.values() if p.kind is p.KEYWORD_ONLY]


def test_the_extension_source_has_no_unprotected_attribute_access(tmp_path: Any) -> None:
    """Cython, with the directives setup.py uses, warns about nothing in a
    critical section: Python attribute access there (``data.nbytes``,
    ``table.allows``, ``type(x).__name__``) may run code that suspends the
    section, which then protects nothing."""
    source = importlib.resources.files("fastreply").joinpath("_parser_c.pyx")
    pyx = tmp_path / "_parser_c.pyx"
    pyx.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "cython", "-3", "-X", "freethreading_compatible=True",
         "-X", "embedsignature=True", str(pyx)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "critical_section" not in output, output
