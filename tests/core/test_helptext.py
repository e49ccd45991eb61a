"""`python -m polymagic help`: the docs an installed user has, and messages that point
there rather than at a path in the repository."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import polymagic
from polymagic.helptext import HELP_DIR, TOPICS, topic_text

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(polymagic.__file__).resolve().parent


def _help(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "polymagic", "help", *args],
                          capture_output=True, text=True, timeout=60)


def test_help_lists_every_topic():
    """Without a topic, help lists each topic with what it covers."""
    done = _help()
    assert done.returncode == 0
    for topic, (_, summary) in TOPICS.items():
        assert re.search(rf"^  {topic}\s+{re.escape(summary)}$", done.stdout, re.M), done.stdout


@pytest.mark.parametrize("topic", sorted(TOPICS))
def test_each_topic_prints_its_page_of_docs(topic):
    """`help julia` prints docs/julia.md itself, as shipped inside the package."""
    done = _help(topic)
    assert done.returncode == 0
    assert done.stdout == (ROOT / "docs" / TOPICS[topic][0]).read_text(encoding="utf-8")


def test_unknown_topic_exits_2_naming_the_topics():
    """A topic that does not exist fails and says which ones do."""
    done = _help("fortran")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "no help topic 'fortran'; topics: " + ", ".join(TOPICS)
    with pytest.raises(KeyError, match="no help topic 'cobol'"):
        topic_text("cobol")


def test_help_pages_ship_with_the_package():
    """The pages are package data (help/*.md in pyproject's globs), each resolving to a
    file of docs/ (so there is one text to keep true)."""
    assert '"help/*.md"' in (ROOT / "pyproject.toml").read_text()
    for filename, _ in TOPICS.values():
        assert (HELP_DIR / filename).resolve() == (ROOT / "docs" / filename).resolve()


def _strings_shown_to_users(path: Path):
    """String constants of a module except its own docstring (written for maintainers);
    function and class docstrings count (`%%cpp?` shows them)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module_doc = ast.get_docstring(tree, clean=False)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value != module_doc:
            yield node.lineno, node.value


def test_no_message_points_into_the_repository():
    """No message or docstring a user sees says `see docs/...`; pointers name a help
    topic that exists."""
    pointing, topics = [], set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, text in _strings_shown_to_users(path):
            if "docs/" in text:
                pointing.append(f"{path.relative_to(PACKAGE)}:{line}")
            topics.update(re.findall(r"python -m polymagic help ([a-z][\w-]*)", text))
    assert not pointing, pointing
    assert topics and topics <= set(TOPICS), topics
