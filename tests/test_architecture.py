"""The shape of the code, checked: no import loop, an instant start, and task kinds that own their kind."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "hf_finetune"
HEAVY = ("torch", "transformers", "datasets", "evaluate")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _top_level_imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports when it is imported: its module-level import statements
    (not those inside functions, nor under ``if TYPE_CHECKING:``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try)):
                visit(node.body + node.orelse + getattr(node, "finalbody", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in known)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                if base in known:
                    found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    found.discard(name)
    return found


def test_the_import_graph_of_the_package_has_no_loop():
    modules = _modules()
    graph = {name: _top_level_imports(path, name, set(modules)) for name, path in modules.items()}
    assert graph["hf_finetune.training"] >= {"hf_finetune.config", "hf_finetune.outputs"}   # the walk sees imports
    loops, state = [], {}

    def walk(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                loops.append(trail[trail.index(other):] + [other])
            elif other not in state:
                walk(other, trail + [other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert not loops, "import loops: " + "; ".join(" -> ".join(loop) for loop in loops)


def _heavy_modules_after(code: str, cwd: Path | None = None) -> tuple[list[str], str]:
    probe = (f"import sys\n{code}\n"
             f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("HEAVY="))
    return [m for m in line[len("HEAVY="):].split(",") if m], proc.stdout


def test_importing_the_package_loads_no_heavy_library():
    heavy, _ = _heavy_modules_after("import hf_finetune\nassert hf_finetune.__version__")
    assert heavy == []


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_help_and_version_load_no_heavy_library(argv):
    heavy, out = _heavy_modules_after(f"from hf_finetune.cli import main\nassert main({argv!r}) == 0")
    assert heavy == [] and "hf-finetune" in out


def test_commands_that_read_a_finished_run_load_no_heavy_library(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for argv in (["card", str(run)], ["summary", str(run)], ["init-ci", "--dir", str(tmp_path / "repo"),
                                                                "--install-spec", "hf-finetune==0.1.0"]):
        heavy, out = _heavy_modules_after(f"from hf_finetune.cli import main\nassert main({argv!r}) == 0")
        assert heavy == [], (argv, heavy)
    assert "| test |" in _heavy_modules_after(f"from hf_finetune.cli import main\nmain({['summary', str(run)]!r})")[1]


def _kind_names() -> set[str]:
    return {p.stem.replace("_", "-") for p in (PACKAGE / "kinds").glob("*.py")
            if not p.stem.startswith("_") and p.stem not in ("base", "baselines")}


def test_no_kind_is_named_outside_the_kinds_and_the_templates():
    names = _kind_names()
    assert {"text-classification", "summarization", "regression"} <= names
    found = []
    for path in PACKAGE.rglob("*.py"):
        if "kinds" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert not found, found


def test_every_template_kind_and_every_per_kind_option_belongs_to_a_kind():
    import yaml

    from hf_finetune import kinds
    from hf_finetune.config import RunConfig

    assert set(kinds.names()) == _kind_names()
    for template in (REPO / "task_templates").glob("*.yaml"):
        assert yaml.safe_load(template.read_text())["kind"] in kinds.names(), template
    per_kind = {f.name for f in RunConfig.fields() if f.metadata.get("per_kind")}
    claimed = {option for name in kinds.names() for option in kinds.get(name).options}
    assert claimed == per_kind   # an option no kind reads would never be offered; one a kind reads must exist
