"""The documentation site: it builds strictly, documents every public name, and renders.

The site is built once per session with ``mkdocs build --strict`` (the ``docs`` extra:
``python -m pip install -e ".[docs]"``). Its API reference is generated from the
docstrings by mkdocstrings; a public name is one in its module's ``__all__``. The
rendering test drives headless Chromium (Debian's ``chromium`` package, which .ci/run
installs) over the DevTools protocol on a pipe, loads every page from a local server and
fails on a missing title or any console error, uncaught exception or failed request.
"""

from __future__ import annotations

import ast
import functools
import http.server
import importlib
import inspect
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The modules the API reference documents, each with its __all__ (docs/api/*.md).
API_MODULES = [
    "minidl",
    "minidl.nn",
    "minidl.nn.functional",
    "minidl.nn.init",
    "minidl.nn.utils",
    "minidl.nn.parallel",
    "minidl.models",
    "minidl.optim",
    "minidl.optim.lr_scheduler",
    "minidl.data",
    "minidl.data.transforms",
    "minidl.train",
    "minidl.callbacks",
    "minidl.io",
    "minidl.distributed",
    "minidl.runtime",
    "minidl.random",
    "minidl.autograd",
    "minidl.gradcheck",
    "minidl.cuda",
    "minidl.utils.data",
]


def _public_names():
    """(module, name, value) for every public name that is not a module."""
    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            value = getattr(module, name)
            if not inspect.ismodule(value):
                yield module_name, name, value


@functools.lru_cache(maxsize=1)
def _attribute_docstrings():
    """Names that carry an attribute docstring (a string right after the assignment)."""
    documented = set()
    for source in (ROOT / "minidl").rglob("*.py"):
        body = ast.parse(source.read_text(encoding="utf-8")).body
        for statement, following in zip(body, body[1:]):
            if not (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                continue
            if isinstance(statement, ast.Assign):
                documented |= {t.id for t in statement.targets if isinstance(t, ast.Name)}
            elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                documented.add(statement.target.id)
    return documented


def test_every_documented_module_declares_its_public_names():
    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        assert isinstance(getattr(module, "__all__", None), list), f"{module_name}: no __all__"
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, f"{module_name}.__all__ names what it lacks: {missing}"


def test_every_public_name_has_a_docstring():
    missing = []
    for module_name, name, value in _public_names():
        if callable(value) or inspect.isclass(value):
            has_doc = bool(inspect.getdoc(value)) and (
                # a class's docstring, not one inherited from object or a builtin type
                not inspect.isclass(value) or value.__doc__ is not None
            )
        else:  # constants and dtypes: an attribute docstring in the source
            has_doc = name in _attribute_docstrings()
        if not has_doc:
            missing.append(f"{module_name}.{name}")
    assert not missing, f"public names without a docstring: {missing}"


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason='the docs extra: python -m pip install -e ".[docs]"')
    pytest.importorskip("mkdocstrings_handlers.python", reason="the docs extra (mkdocstrings)")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-6000:]}"
    return out


def _inventory(site):
    """The identifiers mkdocstrings rendered (objects.inv, Sphinx's format)."""
    raw = (site / "objects.inv").read_bytes()
    body = zlib.decompress(raw.split(b"\n", 4)[4]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines() if line}


def _paths(module_name, name, value):
    """The identifiers under which the reference may show a name: where it is exported,
    and where it is defined."""
    paths = {f"{module_name}.{name}"}
    defined_in = getattr(value, "__module__", None)
    if isinstance(defined_in, str) and (inspect.isclass(value) or inspect.isroutine(value)):
        paths.add(f"{defined_in}.{value.__qualname__}")
    return paths


def test_every_public_name_has_an_entry_in_the_api_reference(site):
    rendered = _inventory(site)
    missing = [
        f"{module_name}.{name}"
        for module_name, name, value in _public_names()
        if not _paths(module_name, name, value) & rendered
    ]
    assert not missing, f"public names missing from the API reference (docs/api): {missing}"


def test_the_search_index_holds_every_public_name(site):
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    anchors = {
        entry["location"].split("#", 1)[1] for entry in index["docs"] if "#" in entry["location"]
    }
    missing = [
        f"{module_name}.{name}"
        for module_name, name, value in _public_names()
        if not _paths(module_name, name, value) & anchors
    ]
    assert not missing, f"public names the site's search cannot find: {missing}"


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium: apt-get install -y chromium (.ci/run installs it)")


class _Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, executable, profile):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        flags = [
            "--headless=new",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--remote-debugging-pipe",  # the browser reads fd 3 and writes fd 4
            f"--user-data-dir={profile}",
            "about:blank",
        ]

        def wire():  # in the child, before exec: fds 3 and 4 become the two pipe ends
            ends = os.dup(to_browser_r), os.dup(from_browser_w)  # above 4, whatever they were
            os.dup2(ends[0], 3)
            os.dup2(ends[1], 4)

        self.process = subprocess.Popen(
            [executable, *flags],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire,
            close_fds=False,  # Python's own descriptors close on exec anyway
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._messages: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._next_id = 0
        self.events: list[dict] = []

    def _read(self):
        pending = b""
        while True:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                self._messages.put(None)
                return
            pending += chunk
            *complete, pending = pending.split(b"\0")
            for message in complete:
                self._messages.put(json.loads(message))

    def _next(self, timeout):
        try:
            message = self._messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("Chromium did not answer within the time allowed") from None
        assert message is not None, "Chromium closed its pipe"
        return message

    def send(self, method, session=None, timeout=60, **params):
        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params}
        if session:
            request["sessionId"] = session
        os.write(self._to_browser, json.dumps(request).encode() + b"\0")
        while True:
            message = self._next(timeout)
            if message.get("id") == self._next_id:
                assert "error" not in message, f"{method}: {message['error']}"
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method, timeout=60):
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            message = self._next(timeout)
            if message.get("method") == method:
                return message
            self.events.append(message)

    def new_page(self, *domains):
        """A blank tab, attached, with the DevTools domains given enabled; its session."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", *domains):
            self.send(f"{domain}.enable", session)
        return session

    def visit(self, session, url):
        """Load ``url``, forgetting the events of earlier pages; returns once it has loaded."""
        self.events.clear()
        self.send("Page.navigate", session, url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, session, expression):
        """The value of a JavaScript expression (a promise is awaited) in the page."""
        result = self.send(
            "Runtime.evaluate",
            session,
            awaitPromise=True,
            returnByValue=True,
            expression=expression,
        )
        return result["result"]["value"]

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except AssertionError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_browser)


def _problems(events):
    """Console errors, uncaught exceptions and failed loads among DevTools events."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = [a.get("value", a.get("description", "")) for a in params.get("args", [])]
            found.append(f"console.{params['type']}: {' '.join(map(str, args))}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append(f"uncaught: {details.get('exception', {}).get('description', details)}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.loadingFailed":
            found.append(f"failed request: {params.get('errorText')}")
    return found


@pytest.fixture(scope="module")
def served_site(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(site))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_every_page_renders_its_title_without_console_errors(site, served_site, tmp_path):
    pages = sorted(p.relative_to(site).parent.as_posix() for p in site.rglob("index.html"))
    assert len(pages) > 30, pages
    browser = _Browser(_chromium(), tmp_path / "profile")
    try:
        session = browser.new_page("Runtime", "Log", "Network")
        failures = {}
        for page in pages:
            url = served_site + ("" if page == "." else page + "/")
            browser.visit(session, url)
            # the search worker fetches and indexes search_index.json after the load
            state = browser.evaluate(
                session,
                """new Promise(done => setTimeout(() => done({
                    title: document.title,
                    h1: (document.querySelector('article h1') || {}).textContent || '',
                    visible: !!(document.querySelector('article h1') || {}).offsetHeight,
                }), 300))""",
            )
            problems = _problems(browser.events)
            if not state["h1"].strip() or not state["visible"]:
                problems.append("no visible title (h1)")
            if not state["title"].strip() or "minidl" not in state["title"]:
                problems.append(f"document title {state['title']!r}")
            if problems:
                failures[url] = problems
    finally:
        browser.close()
    assert not failures, f"pages with problems: {json.dumps(failures, indent=1)}"


def test_the_sites_search_finds_a_layer(site, served_site, tmp_path):
    """Typing a name in the search box lists its API entry (the index loads and works)."""
    browser = _Browser(_chromium(), tmp_path / "profile")
    try:
        session = browser.new_page()
        browser.visit(session, served_site)
        found = browser.evaluate(
            session,
            """new Promise(done => {
                const input = document.querySelector('input[data-md-component=search-query]');
                let tries = 0;
                const look = () => {
                    input.value = 'BatchNorm2d';
                    input.dispatchEvent(new Event('input', {bubbles: true}));
                    setTimeout(() => {
                        const links = [...document.querySelectorAll(
                            '.md-search-result__item a')].map(a => a.href);
                        if (links.length || ++tries > 40) done(links); else look();
                    }, 250);
                };
                look();
            })""",
        )
    finally:
        browser.close()
    assert any("/api/nn/" in link and link.endswith("#minidl.nn.BatchNorm2d") for link in found), (
        found
    )
