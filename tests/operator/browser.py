"""Headless Debian Chromium driven over the DevTools protocol with a small aiohttp websocket
client (no browser downloads, no playwright)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-proxy-server",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
    "--remote-debugging-port=0",
]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.ids = ws, itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        await self.ws.send_json({"id": msg_id, "method": method, "params": params})
        async for msg in self.ws:
            data = json.loads(msg.data)
            if data.get("id") == msg_id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return dict(data.get("result", {}))
        raise RuntimeError("the browser closed the connection")

    async def eval(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def wait_for(self, expression: str, timeout_s: float = 20.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            with contextlib.suppress(RuntimeError):  # the page may be navigating
                value = await self.eval(expression)
                if value:
                    return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"never true in the page: {expression}")
            await asyncio.sleep(0.05)

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def chromium_page() -> AsyncIterator[Page]:
    binary = chromium_path()
    assert binary, "chromium is not installed (make test installs it: apt-get install chromium)"
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = await _devtools_port(Path(profile), proc)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                    targets = await resp.json()
                async with http.get(f"http://127.0.0.1:{port}/json/version") as resp:
                    browser_ws = (await resp.json())["webSocketDebuggerUrl"]
                page_ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                try:
                    async with http.ws_connect(page_ws, max_msg_size=64 * 1024 * 1024) as ws:
                        page = Page(ws)
                        await page.send("Page.enable")
                        await page.send("Network.enable")
                        yield page
                finally:
                    await _close_browser(http, browser_ws)
        finally:
            await asyncio.to_thread(_stop, proc)


async def _close_browser(http: aiohttp.ClientSession, browser_ws: str) -> None:
    """Browser.close over DevTools: headless chromium does not always end on SIGTERM."""
    with contextlib.suppress(Exception):
        async with http.ws_connect(browser_ws) as ws:
            await ws.send_json({"id": 1, "method": "Browser.close"})
            await asyncio.wait_for(ws.receive(), 5)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End what this module started: the wrapper script and chromium with its helpers, which all
    run in the process group created for them (killed by its id, never by name)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


async def _devtools_port(profile: Path, proc: subprocess.Popen[bytes]) -> int:
    """Chromium writes the port it chose (for --remote-debugging-port=0) into the profile."""
    marker = profile / "DevToolsActivePort"
    for _ in range(600):
        if marker.exists() and marker.read_text().strip():
            return int(marker.read_text().split()[0])
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        await asyncio.sleep(0.05)
    raise RuntimeError("chromium did not open its DevTools port")
