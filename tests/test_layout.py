"""The layout keeps its promises: SQL only in the store, dependencies pointing one way
(ui -> curate -> search -> indexer), and modules of a few hundred lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("indexer", "search", "curate", "ui", "bench")
# a package may import only the packages after it here
ORDER = ("ui", "curate", "search", "indexer")
SQL = re.compile(r"\b(SELECT|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET|CREATE\s+TABLE|PRAGMA)"
                 r"\b|\.execute\(|\.query\(|\.db\b")  # fmt: skip
MAX_LINES = 300


def product_modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_only_the_store_speaks_sql():
    speaking = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in product_modules()
        if "indexer/store/" not in path.as_posix()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if SQL.search(line)
    ]
    assert not speaking, "SQL outside indexer/store/:\n" + "\n".join(speaking)


def imported_packages(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_dependencies_point_one_way():
    wrong = []
    for path in product_modules():
        package = path.relative_to(ROOT).parts[0]
        if package not in ORDER:
            continue
        allowed = set(ORDER[ORDER.index(package) :])
        for name in imported_packages(path) & set(ORDER) - allowed:
            wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_product_never_imports_test_scaffolding():
    users = [str(path.relative_to(ROOT)) for path in product_modules()
             if imported_packages(path) & {"tests", "testing"}
             and not path.is_relative_to(ROOT / "bench")]  # fmt: skip
    assert not users, users
    bench = {name for path in (ROOT / "bench").rglob("*.py") for name in imported_packages(path)}
    assert "tests" not in bench  # the benchmark takes its scaffolding from testing/ only


def test_modules_stay_small():
    big = {str(path.relative_to(ROOT)): n for path in product_modules()
           if (n := len(path.read_text().splitlines())) > MAX_LINES}  # fmt: skip
    assert not big, f"modules over {MAX_LINES} lines: {big}"
