"""Every rule id, design section and seed cited in code and tests resolves inside the repository
(docs/), the docs' links and test references exist, and docs/sources.md agrees with the catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.factories import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SOURCES = [
    p
    for d in ("taskgate", "tests")
    for p in (ROOT / d).rglob("*")
    if p.suffix in (".py", ".lua", ".toml") and p.is_file() and p != Path(__file__)
]
RULE = re.compile(r"\b([SB])(\d{1,2})\b")
SECTION = re.compile(r"§\s?(\d{1,2})")
SEED = re.compile(r"\bseed (\d{3})\b")
ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(doc: str) -> set[str]:
    return set(ANCHOR.findall((DOCS / doc).read_text()))


def cited(pattern: re.Pattern[str]) -> dict[str, set[str]]:
    """Each cited id -> the files citing it."""
    out: dict[str, set[str]] = {}
    for path in SOURCES:
        for m in pattern.finditer(path.read_text()):
            out.setdefault("".join(m.groups()).lower(), set()).add(str(path.relative_to(ROOT)))
    return out


def test_every_cited_rule_id_is_defined_in_rules_md():
    ids = cited(RULE)
    assert {"s1", "s9", "b1", "b7"} <= set(ids)  # the scan finds what is there
    missing = {i: sorted(files)[:3] for i, files in ids.items() if i not in anchors("rules.md")}
    assert not missing, f"rule ids cited but not defined in docs/rules.md: {missing}"


def test_every_cited_section_is_defined_in_design_md():
    ids = cited(SECTION)
    assert ids
    missing = {i: sorted(f)[:3] for i, f in ids.items() if f"section-{i}" not in anchors("design.md")}
    assert not missing, f"sections cited but not in docs/design.md: {missing}"


def test_every_cited_seed_is_explained_in_sources_md():
    ids = cited(SEED)
    assert ids
    missing = {i: sorted(f)[:3] for i, f in ids.items() if f"seed-{i}" not in anchors("sources.md")}
    assert not missing, f"seeds cited but not in docs/sources.md: {missing}"


@pytest.mark.parametrize("doc", ["README.md", *(f"docs/{p.name}" for p in sorted(DOCS.glob("*.md")))])
def test_links_stay_in_the_repository_and_resolve(doc):
    page = ROOT / doc
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        assert resolved.is_relative_to(ROOT), f"{doc} links outside the repository: {target}"
        assert resolved.exists(), f"{doc} links to a missing file: {target}"
        if anchor and resolved.suffix == ".md":
            text = resolved.read_text()
            headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
            assert anchor in set(ANCHOR.findall(text)) | headings, f"{doc}: no anchor {target}"


def _slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize(("doc", "at_least"), [("rules.md", 80), ("design.md", 15)])
def test_files_and_tests_named_in_docs_exist(doc, at_least):
    """Every file (`x.py`, `x.lua`, `x.toml`, relative to taskgate/, tests/ or the root) and every
    test function (`file.py::test_x`, then `::test_y` or a bare `test_z` in the same file; `*` is a
    wildcard) that the page names exists."""
    text = (DOCS / doc).read_text()
    current: Path | None = None
    checked = 0
    for token in re.findall(r"`([^`]+)`", text):
        if re.fullmatch(r"test_[\w*]+", token):
            token = "::" + token
        file, _, test = token.partition("::")
        if file.endswith((".py", ".lua", ".toml")) and "<" not in file:
            candidates = [ROOT / "taskgate" / file, ROOT / "tests" / file, ROOT / file]
            found = [c for c in candidates if c.is_file()]
            assert found, f"docs/{doc} names a missing file: {file}"
            current = found[0]
        elif not (file == "" and test):
            continue
        if test:
            assert current is not None, f"docs/{doc}: {test} named before any file"
            pattern = re.escape(test).replace(r"\*", r"\w*")
            assert re.search(rf"def {pattern}\b", current.read_text()), f"no {test} in {current}"
        checked += 1
    assert checked > at_least


def _table(doc: str, header_start: str) -> list[list[str]]:
    lines = (DOCS / doc).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_sources_plans_table_is_the_catalogue():
    rows = _table("sources.md", "| plan |")
    assert {r[0] for r in rows} == set(CATALOGUE.plans)
    for name, cap, relax, incorrect, penalty, retention in rows:
        plan = CATALOGUE.plans[name]
        retention_s = int(retention[:-1]) * {"h": 3600, "d": 86_400}[retention[-1]]
        assert (int(cap), int(relax), int(incorrect), penalty, retention_s) == (
            plan.concurrency,
            plan.relax_daily,
            plan.incorrect_daily,
            str(plan.incorrect_penalty),
            plan.retention_s,
        ), name


def test_sources_units_and_conversion_are_the_catalogue():
    assert {r[0]: int(r[1]) for r in _table("sources.md", "| unit |")} == dict(CATALOGUE.per_usd)
    [(unit, from_unit, below, attempts)] = _table("sources.md", "| converts to |")
    rule = CATALOGUE.auto_convert[unit]
    assert (from_unit, int(below)) == (rule.from_unit, rule.below)
    assert tuple(int(a) for a in attempts.split(",")) == rule.attempts


def test_sources_midjourney_table_is_the_catalogue():
    table = CATALOGUE.midjourney
    assert table is not None
    for mode, version, *prices in _table("sources.md", "| mode | version |"):
        assert [int(p) for p in prices] == list(table.modes[mode][version]), (mode, version)


def _module_map() -> str:
    text = (DOCS / "architecture.md").read_text()
    return text[text.index("## Module map") : text.index('<a id="keyspace"></a>')]


def test_module_map_names_every_module_and_script():
    """Every module of taskgate/ is in architecture.md's module map, and every Lua script is named
    on its package's `<package>/lua/` row (libraries after "lib")."""
    rows = [line.split("|")[1:3] for line in _module_map().splitlines() if line.startswith("| `")]
    named: set[str] = set()
    for first, second in rows:
        for path in re.findall(r"`([^`]+)`", first):
            if path.endswith("/lua/"):
                scripts, _, libs = second.partition("; lib ")
                named |= {f"{path}{n}.lua" for n in re.findall(r"`(\w+)`", scripts)}
                named |= {f"{path}lib/{n}.lua" for n in re.findall(r"`(\w+)`", libs)}
            elif path.endswith(".py"):
                named.add(path)
        if "metrics/cluster.py" in first:  # its scripts are named in the description
            named |= {f"metrics/lua/{n}.lua" for n in re.findall(r"`(\w+)`", second.partition("scripts")[2])}
    pkg = ROOT / "taskgate"
    existing = {str(p.relative_to(pkg)) for p in pkg.rglob("*") if p.suffix in (".py", ".lua")}
    existing -= {str(p.relative_to(pkg)) for p in pkg.glob("*/__init__.py")}  # package markers
    named -= {str(p.relative_to(pkg)) for p in pkg.glob("*/__init__.py")}
    assert not existing - named, f"docs/architecture.md's module map misses: {sorted(existing - named)}"
    assert not named - existing, (
        f"docs/architecture.md's module map names missing files: {sorted(named - existing)}"
    )


def test_keyspace_table_is_keys_py():
    """Each row of the keyspace table is a `Keys` method, and its key is what the method builds."""
    from taskgate.store.keys import Keys

    keys = Keys("P")
    methods = {n for n in dir(Keys) if not n.startswith("_") and callable(getattr(Keys, n))}
    methods -= {"pattern", "arq_job_attempt"}  # not keys: a SCAN pattern, a job id parsed
    text = (DOCS / "architecture.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `") and "<base>" in line]
    listed: set[str] = set()
    for row in rows:
        method_cell, key_cell = re.split(r"(?<!\\)\|", row)[1:3]
        names = re.findall(r"`(\w+)`", method_cell)
        formats = re.findall(r"`([^`]+)`", key_cell)
        assert len(names) == len(formats), row
        for name, fmt in zip(names, formats, strict=True):
            fn = getattr(keys, name)
            built = fn(*["\0"] * (fn.__code__.co_argcount - 1)).replace("\0", "*")
            expected = re.sub(r"<\w+>(?:\|<\w+>)*", "*", fmt.replace("<base>", "{P}").replace("\\|", "|"))
            assert expected == built, (name, fmt, built)
            listed.add(name)
    assert listed == methods, f"keyspace table and Keys differ: {sorted(listed ^ methods)}"
