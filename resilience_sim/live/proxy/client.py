"""A thin client of Toxiproxy's HTTP API for notebooks, over one reused ``httpx.Client``.

It uses only the documented API (Toxiproxy 2.6 or later: updates by PATCH), so it drives a real
Toxiproxy server as well as :class:`~.api.ToxiproxyServer`: change the URL, nothing else.

>>> with ToxiproxyClient(server.api_url) as toxiproxy:
...     shop = toxiproxy.create("shop", upstream="127.0.0.1:8001")
...     shop.add_toxic("latency", latency=200, jitter=50)
...     with shop.down():
...         ...                                   # connections to shop.port are refused here

Every refused request raises :class:`ToxiproxyError` with the status and Toxiproxy's message.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from ...core import validate

DEFAULT_URL = "http://127.0.0.1:8474"


class ToxiproxyError(Exception):
    """A request the server refused: ``status`` and Toxiproxy's ``message``; ``body`` is the decoded
    error body (a ``/populate`` error lists the proxies it applied under ``"proxies"``)."""

    def __init__(self, status: int, message: str, body=None):
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.body = status, message, body


@dataclass(frozen=True)
class Toxic:
    """A toxic as the server reports it."""
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> "Toxic":
        return cls(data["name"], data["type"], data.get("stream", "downstream"),
                   float(data.get("toxicity", 1.0)), dict(data.get("attributes") or {}))


def _segment(name: str) -> str:
    return quote(name, safe="")


class Proxy:
    """A handle on one proxy; its fields are those of the server's last answer about it."""

    def __init__(self, client: "ToxiproxyClient", data: dict):
        self._client = client
        self._take(data)

    def _take(self, data: dict) -> "Proxy":
        self.name, self.listen = data["name"], data["listen"]
        self.upstream, self.enabled = data["upstream"], data["enabled"]
        return self

    @property
    def port(self) -> int:
        """The port clients connect to (the real one when ``listen`` asked for port 0)."""
        return int(self.listen.rpartition(":")[2])

    @property
    def _path(self) -> str:
        return f"/proxies/{_segment(self.name)}"

    def add_toxic(self, type: str, *, stream: str = "downstream", toxicity: float = 1.0,  # noqa: A002
                  name: str | None = None, **attributes) -> Toxic:
        """Add a toxic (named ``<type>_<stream>`` unless ``name`` is given) with its attributes as
        keywords: ``add_toxic("latency", latency=100, jitter=10)``."""
        body = {"name": name or f"{type}_{stream}", "type": type, "stream": stream,
                "toxicity": toxicity, "attributes": attributes}
        return Toxic.from_json(self._client._call("POST", f"{self._path}/toxics", body))

    def update_toxic(self, name: str, toxicity: float | None = None, **attributes) -> Toxic:
        """Change a toxic's ``toxicity`` and the attributes given; the others keep their values."""
        body: dict = {"attributes": attributes}
        if toxicity is not None:
            body["toxicity"] = toxicity
        return Toxic.from_json(self._client._call("PATCH", f"{self._path}/toxics/{_segment(name)}", body))

    def remove_toxic(self, name: str) -> None:
        self._client._call("DELETE", f"{self._path}/toxics/{_segment(name)}")

    def toxics(self) -> list[Toxic]:
        """Upstream toxics first, then downstream, each in the order they were added."""
        return [Toxic.from_json(t) for t in self._client._call("GET", f"{self._path}/toxics")]

    def update(self, *, listen: str | None = None, upstream: str | None = None,
               enabled: bool | None = None) -> "Proxy":
        body = {k: v for k, v in (("listen", listen), ("upstream", upstream), ("enabled", enabled)) if v is not None}
        return self._take(self._client._call("PATCH", self._path, body))

    def disable(self) -> "Proxy":
        """Stop listening: new connections are refused, open ones are closed."""
        return self.update(enabled=False)

    def enable(self) -> "Proxy":
        """Listen again (on the same port)."""
        return self.update(enabled=True)

    @contextlib.contextmanager
    def down(self):
        """Disabled inside the ``with`` block, enabled again on leaving it (even on an error)."""
        self.disable()
        try:
            yield self
        finally:
            self.enable()

    def delete(self) -> None:
        self._client._call("DELETE", self._path)

    def refresh(self) -> "Proxy":
        return self._take(self._client._call("GET", self._path))

    def __repr__(self) -> str:
        return f"Proxy({self.name!r}, {self.listen} -> {self.upstream}, enabled={self.enabled})"


class ToxiproxyClient:
    """Toxiproxy's API at ``url`` over one ``httpx.Client`` (closed by :meth:`close` or the ``with`` block)."""

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float = 10.0):
        self.url = validate.text("url", url, empty=False).rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=validate.positive("timeout", timeout))

    def _call(self, method: str, path: str, body=None):
        response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            try:
                decoded = response.json()
                message = decoded["error"]
            except (ValueError, KeyError, TypeError):
                decoded, message = None, response.text.strip()
            raise ToxiproxyError(response.status_code, message, decoded)
        return response.json() if response.content else None

    def create(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True) -> Proxy:
        """A new proxy from ``listen`` to ``upstream``; ``.port`` is the real port when ``listen`` asks for 0."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return Proxy(self, self._call("POST", "/proxies", body))

    def proxies(self) -> dict[str, Proxy]:
        return {name: Proxy(self, data) for name, data in self._call("GET", "/proxies").items()}

    def get(self, name: str) -> Proxy:
        return Proxy(self, self._call("GET", f"/proxies/{_segment(name)}"))

    def populate(self, proxies: list[dict]) -> list[Proxy]:
        """Toxiproxy's ``/populate``: create or replace the proxies listed (dicts with ``name``,
        ``upstream``, ``listen`` and optionally ``enabled``); those unchanged keep their toxics."""
        answer = self._call("POST", "/populate", list(proxies))
        return [Proxy(self, data) for data in answer.get("proxies") or []]

    def reset(self) -> None:
        """Every proxy enabled, every toxic removed."""
        self._call("POST", "/reset")

    def version(self) -> str:
        return self._call("GET", "/version")["version"]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ToxiproxyClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ToxiproxyClient({self.url!r})"
