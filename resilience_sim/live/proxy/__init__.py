"""A fault-injecting TCP proxy that speaks Toxiproxy's HTTP API, so a real Toxiproxy can stand in.

:class:`ToxiproxyServer` serves the API (every endpoint, JSON shape, status code and error message
of Toxiproxy 2.12, spec ``references/toxiproxy-api.md``) and runs the proxies; :class:`ToxiproxyClient`
is a thin client of that API for notebooks, usable against a real Toxiproxy unchanged; Toxiproxy's
own Python client (``toxiproxy-python``) drives the server too.

Modules: :mod:`.toxics` (the toxic types and what each does on a link), :mod:`.links` (one
connection's two links and their chunk pipeline), :mod:`.proxies` (a proxy's listener, connections
and toxics; the collection and the API's operations), :mod:`.api` (the HTTP layer and the server),
:mod:`.client`, :mod:`.errors` (Toxiproxy's error messages).

Deliberate differences from Toxiproxy (each one a refusal or a guarantee where Toxiproxy has a quirk):

* **loopback only**: a proxy's ``listen`` host must be ``127.0.0.1`` or ``localhost`` (400 otherwise,
  an empty ``listen`` included); the API binds 127.0.0.1;
* **reproducible randomness**: toxicity, jitter and slicer draws come from ``random.Random`` streams
  derived from the server's ``seed`` (Toxiproxy's ``-seed`` is discarded, §7);
* **input Toxiproxy takes but cannot honour is refused with a 400** naming the attribute and its
  range: ``bandwidth.rate`` <= 0 (hangs or crashes Toxiproxy), a slicer with ``average_size`` < 1 or
  ``size_variation`` >= ``average_size``, negative durations and sizes, a toxicity outside [0, 1],
  names containing ``/``, request bodies over 1 MiB;
* **reset_peer always resets with an RST, and nothing else does**: ``SO_LINGER`` 0 is set when the
  toxic fires, so connections opened before the toxic was added are reset too, and connections it
  spared close with a FIN (Toxiproxy sets linger at accept time, §6);
* **no race with a toxic being added** (issue #148): a connection sees the old chain or the new one;
* the upstream dial is bounded (2 s) and a proxy keeps at most ``max_connections`` (256) connections,
  closing any further one at once;
* ``/metrics`` is not offered (404), as with Toxiproxy started without ``-proxy-metrics``; an
  error's ``Content-Type`` is Toxiproxy's ``text/plain; charset=utf-8``.
"""
from .api import VERSION, ToxiproxyServer
from .client import Proxy, Toxic, ToxiproxyClient, ToxiproxyError
from .toxics import TYPES as TOXIC_TYPES

__all__ = ["VERSION", "TOXIC_TYPES", "Proxy", "Toxic", "ToxiproxyClient", "ToxiproxyError", "ToxiproxyServer"]
