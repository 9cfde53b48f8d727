"""Every relative link in the README and the docs resolves to a file inside the repository."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "data" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")


def relative_links(text: str) -> list[str]:
    """Link targets outside code, without web addresses and in-page anchors."""
    text = CODE.sub("", FENCE.sub("", text))
    targets = [target.split("#")[0] for target in LINK.findall(text)]
    return [t for t in targets if t and not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]


def test_the_documents_exist():
    assert all(document.is_file() for document in DOCUMENTS)
    assert {"window_model.md", "trace_format.md", "profiler_fidelity.md", "reproduce.md", "benchmarks.md"} <= {
        document.name for document in DOCUMENTS}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: str(d.relative_to(ROOT)))
def test_relative_links_resolve_inside_the_repository(document):
    broken = []
    for target in relative_links(document.read_text(encoding="utf-8")):
        path = (document.parent / target).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert not broken, f"{document.relative_to(ROOT)}: broken relative links {broken}"


def test_the_link_finder_sees_links_and_skips_code():
    text = "[a](docs/x.md) [b](https://e.org) [c](#top) `[d](no.md)`\n```\n[e](no.md)\n```\n[f](../y.md#part)"
    assert relative_links(text) == ["docs/x.md", "../y.md"]
