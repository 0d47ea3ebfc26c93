"""The README is a front page: short, its commands are what CI runs, its tables are generated, its links resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.cli.listing import BEGIN, END, markdown_table, registries

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md"))]


def test_readme_is_a_front_page() -> None:
    assert len(README.read_bytes()) <= 15_000


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    blocks = re.findall(r"```bash\n(.*?)\n```", README.read_text(), re.DOTALL)
    test_command = next(b for b in blocks if "pytest" in b and "\n" not in b)
    assert test_command in (REPO / ".ci" / "run").read_text().splitlines()


def test_the_registry_table_is_generated_and_names_registered_entries() -> None:
    """The block between the registry markers has the generator's form, and every name in it is a
    registered entry written in its canonical form with the defaults. A new entry need not be added
    by hand: `python -m bench list --markdown` prints the block again."""
    text = README.read_text()
    block = text[text.index(BEGIN) : text.index(END) + len(END)]
    generated = markdown_table().splitlines()
    lines = block.splitlines()
    assert lines[:3] == generated[:3] and lines[-1] == generated[-1]
    for family, registry in registries().items():
        row = next(line for line in lines if line.startswith(f"| {family} |"))
        names = re.findall(r"`([^`]+)`", row)
        assert names, family
        for name in names:
            default = str(registry.resolve(name.split("[")[0]))  # the entry with its defaults
            assert default == name, f"README lists {name!r}, not {family[:-1]} {default!r} with its defaults"


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_relative_links_resolve(page: Path) -> None:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
        assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
