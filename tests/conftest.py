"""Fixtures shared by the test modules: real R (skipped where absent) and an explicit
shared namespace."""
import pytest

import polymagic as pm
from polymagic import hub


@pytest.fixture(scope="session")
def R():
    """The embedded R engine; the test is skipped, with the reason, where R is missing."""
    pytest.importorskip("rpy2", reason="rpy2 is not installed (pip install 'polymagic[r]')")
    try:
        pm.R.eval("NULL")
    except pm.BridgeUnavailable as missing:
        pytest.skip(f"no R on this machine: {missing}")
    return pm.R


@pytest.fixture
def space(monkeypatch):
    """An explicit shared namespace for the test, reset afterwards."""
    monkeypatch.setitem(hub._state, "ipython", None)  # a magics test may have set it
    namespace = {}
    hub.use_namespace(namespace)
    yield namespace
    hub.use_namespace(None)


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    """The test module builds into its own fresh cache directory (use with
    `pytestmark = pytest.mark.usefixtures("private_cache")`)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POLYMAGIC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield
