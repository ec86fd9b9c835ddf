"""Drive headless Chromium over the DevTools protocol (CDP), for browser tests.

Needs only the ``websockets`` package (its sync client) and a ``chromium`` binary
(Debian's ``chromium`` package; ``make test`` installs it when it can). Typical use::

    with Chromium() as browser:
        page = browser.page()
        page.navigate(url)
        page.wait_for("!!document.querySelector('.graphiql-execute-button')")
        page.click(".graphiql-execute-button")
        page.screenshot(tmp_path / "shot.png")
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
    # Port 0: Chromium picks a free port and writes it to <profile>/DevToolsActivePort.
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]


def find_chromium() -> str | None:
    """The Chromium binary on PATH (Debian names it ``chromium``), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Page:
    """One CDP session on a page target (synchronous, one command at a time)."""

    def __init__(self, ws_url: str, timeout: float = 30.0) -> None:
        # max_size=None: screenshots arrive as multi-MB base64 frames.
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(ws_url, max_size=None, open_timeout=timeout))
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.timeout = timeout

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:  # an event: kept for request_urls() and errors()
                self.events.append(msg)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll a JS expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"timed out waiting for: {expression}")

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def click(self, selector: str) -> None:
        """A real mouse click (press + release) at the element's centre."""
        box = self.wait_for(
            f"""(() => {{
                const el = document.querySelector({json.dumps(selector)});
                if (!el) return null;
                el.scrollIntoView({{block: 'center'}});
                const r = el.getBoundingClientRect();
                return r.width && r.height ? {{x: r.x + r.width / 2, y: r.y + r.height / 2}} : null;
            }})()"""
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)

    def screenshot(self, path: str | Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    def request_urls(self) -> list[str]:
        """URLs of every request the page made (Network is enabled by Chromium.page())."""
        self.evaluate("0")  # flush pending events into self.events
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def errors(self) -> list[str]:
        """Uncaught JS exceptions, console.error calls and error log entries."""
        self.evaluate("0")
        out = []
        for e in self.events:
            m, p = e["method"], e["params"]
            if m == "Runtime.exceptionThrown":
                out.append(json.dumps(p["exceptionDetails"])[:500])
            elif m == "Runtime.consoleAPICalled" and p["type"] == "error":
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"{p['entry'].get('url', '')}: {p['entry']['text']}")
        return out

    def close(self) -> None:
        self._stack.close()


class Chromium:
    """Headless Chromium with a fresh profile; a context manager that stops what it started."""

    def __init__(self, binary: str | None = None, timeout: float = 30.0) -> None:
        self.binary = binary or find_chromium() or "chromium"
        self.timeout = timeout

    def __enter__(self) -> Chromium:
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self.proc = subprocess.Popen(
            [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("chromium did not start")
            time.sleep(0.1)
        self.port = int(port_file.read_text().splitlines()[0])
        return self

    def page(self) -> Page:
        """Attach to the initial tab with the Page, Runtime, Network and Log domains on."""
        deadline = time.monotonic() + self.timeout
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list") as r:
                targets = [t for t in json.load(r) if t["type"] == "page"]
            if targets or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        page = Page(targets[0]["webSocketDebuggerUrl"], timeout=self.timeout)
        for domain in ("Page", "Runtime", "Network", "Log"):
            page.send(f"{domain}.enable")
        return page

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()  # only the process this object started
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


# GraphiQL 3.x DOM: the editors are CodeMirror 5 instances.
RESULT_TEXT = "(document.querySelector('.graphiql-response .CodeMirror') || {}).CodeMirror?.getValue() || ''"
QUERY_TEXT = "(document.querySelector('.graphiql-query-editor .CodeMirror') || {}).CodeMirror?.getValue() || ''"
