"""Outside clients drive the server as they would drive Toxiproxy: Toxiproxy's own Python client
(``toxiproxy-python`` 0.1.1, over ``requests``) with every call it offers, and our httpx client."""
import gc
import time

import httpx
import pytest
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from live_support import no_leaks
from resilience_sim.live.proxy import Toxic, ToxiproxyClient, ToxiproxyError, ToxiproxyServer
from resilience_sim.live.server import Handler, LoopbackServer


class Hello(Handler):
    def do_GET(self):
        self.send_json(200, b'{"hello":true}')


@pytest.fixture
def served():
    """(server, upstream address, an httpx client for traffic), checked for leaks."""
    with no_leaks():
        with LoopbackServer(Hello) as upstream, ToxiproxyServer() as server, httpx.Client(timeout=5) as web:
            yield server, f"127.0.0.1:{upstream.port}", web


@pytest.fixture
def theirs(served):
    """toxiproxy-python pointed at the server (its address is class state: restored afterwards)."""
    server, upstream, web = served
    before = APIConsumer.host, APIConsumer.port
    client = toxiproxy.Toxiproxy()
    client.update_api_consumer("127.0.0.1", server.port)
    yield client, upstream, web
    APIConsumer.host, APIConsumer.port = before
    gc.collect()    # its exceptions keep their requests response, and so its socket, until collected


def port(listen):
    return int(listen.rpartition(":")[2])


def timed_get(web, proxy_port):
    started = time.monotonic()
    assert web.get(f"http://127.0.0.1:{proxy_port}/").json() == {"hello": True}
    return time.monotonic() - started


# --- toxiproxy-python -------------------------------------------------------------------------------
def test_toxiproxy_python_creates_lists_gets_and_destroys(theirs):
    client, upstream, web = theirs
    assert client.running() is True
    proxy = client.create(upstream=upstream, name="shop")
    assert proxy.enabled is True and port(proxy.listen) > 0 and proxy.upstream == upstream
    assert timed_get(web, port(proxy.listen)) < 1
    assert list(client.proxies()) == ["shop"] and client.get_proxy("shop").listen == proxy.listen
    with pytest.raises(ProxyExists):
        client.create(upstream=upstream, name="shop")
    assert client.destroy(proxy) is True and client.get_proxy("shop") is None
    with pytest.raises(NotFound):
        proxy.destroy()


def test_toxiproxy_python_creates_a_disabled_proxy_on_a_fixed_listen_as_its_own_test_does(theirs):
    client, upstream, web = theirs
    proxy = client.create(upstream=upstream, name="later", listen="127.0.0.1:26379", enabled=False)
    assert (proxy.listen, proxy.enabled) == ("127.0.0.1:26379", False)


def test_toxiproxy_python_adds_a_latency_toxic_that_slows_responses_then_destroys_it(theirs):
    client, upstream, web = theirs
    proxy = client.create(upstream=upstream, name="shop")
    proxy.add_toxic(type="latency", attributes={"latency": 300})
    toxics = proxy.toxics()
    assert list(toxics) == ["latency_downstream"] and toxics["latency_downstream"].attributes["latency"] == 300
    assert proxy.get_toxic("latency_downstream").stream == "downstream"
    assert timed_get(web, port(proxy.listen)) >= 0.3
    assert proxy.destroy_toxic("latency_downstream") is True and proxy.toxics() == {}
    assert timed_get(web, port(proxy.listen)) < 0.25
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no_such_toxic")


def test_toxiproxy_python_down_refuses_connections_and_brings_the_proxy_back(theirs):
    client, upstream, web = theirs
    proxy = client.create(upstream=upstream, name="shop")
    with proxy.down():
        assert proxy.enabled is False and client.get_proxy("shop").enabled is False
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port(proxy.listen)}/", timeout=2)
    assert proxy.enabled is True and timed_get(web, port(proxy.listen)) < 1


def test_toxiproxy_python_reset_version_populate_and_destroy_all(theirs):
    client, upstream, web = theirs
    assert client.version() == b'{"version": "2.12.0"}\n'
    made = client.populate([{"name": "a", "upstream": upstream, "listen": "127.0.0.1:0"},
                            {"name": "b", "upstream": upstream, "listen": "127.0.0.1:0", "enabled": False}])
    assert [p.name for p in made] == ["a", "b"] and sorted(client.proxies()) == ["a", "b"]
    client.proxies()["a"].add_toxic(type="timeout", attributes={"timeout": 100})
    assert client.reset() is True
    after = client.proxies()
    assert after["a"].toxics() == {} and after["b"].enabled is True
    again = client.populate([{"name": "a", "upstream": "127.0.0.1:1", "listen": after["a"].listen}])
    assert [p.upstream for p in again] == ["127.0.0.1:1"]          # changed upstream: replaced
    client.destroy_all()
    assert client.proxies() == {}


# --- our client ---------------------------------------------------------------------------------------
@pytest.fixture
def ours(served):
    server, upstream, web = served
    with ToxiproxyClient(server.api_url) as client:
        yield client, upstream, web


def test_our_client_creates_lists_and_gets_proxies_with_their_real_port(ours):
    client, upstream, web = ours
    proxy = client.create("shop", upstream)
    assert proxy.port > 0 and proxy.enabled and proxy.listen == f"127.0.0.1:{proxy.port}"
    assert timed_get(web, proxy.port) < 1
    assert list(client.proxies()) == ["shop"] and client.get("shop").port == proxy.port
    off = client.create("off", upstream, listen="127.0.0.1:0", enabled=False)
    assert off.enabled is False and off.enable().enabled is True and off.port > 0


def test_our_client_adds_updates_lists_and_removes_toxics(ours):
    client, upstream, web = ours
    proxy = client.create("shop", upstream)
    added = proxy.add_toxic("latency", latency=250, jitter=0)
    assert added == Toxic("latency_downstream", "latency", "downstream", 1.0, {"latency": 250, "jitter": 0})
    assert timed_get(web, proxy.port) >= 0.25
    updated = proxy.update_toxic("latency_downstream", toxicity=0.5, jitter=5)
    assert updated.toxicity == 0.5 and updated.attributes == {"latency": 250, "jitter": 5}
    proxy.add_toxic("limit_data", stream="upstream", name="cap", bytes=10_000)
    assert [t.name for t in proxy.toxics()] == ["cap", "latency_downstream"]
    proxy.remove_toxic("latency_downstream")
    proxy.remove_toxic("cap")
    assert proxy.toxics() == [] and timed_get(web, proxy.port) < 0.2


def test_our_client_down_refuses_connections_and_restores_even_on_error(ours):
    client, upstream, web = ours
    proxy = client.create("shop", upstream)
    with pytest.raises(RuntimeError):
        with proxy.down():
            assert not client.get("shop").enabled
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://127.0.0.1:{proxy.port}/", timeout=2)
            raise RuntimeError("the experiment failed")
    assert proxy.enabled and timed_get(web, proxy.port) < 1


def test_our_client_raises_api_errors_with_status_and_toxiproxys_message(ours):
    client, upstream, web = ours
    proxy = client.create("shop", upstream)
    cases = [(lambda: client.create("shop", upstream), 409, "proxy already exists"),
             (lambda: client.get("nope"), 404, "proxy not found"),
             (lambda: proxy.add_toxic("down"), 400, "invalid toxic type"),
             (lambda: proxy.remove_toxic("nope"), 404, "toxic not found"),
             (lambda: client.create("x", upstream, listen="0.0.0.0:0"), 400, None)]
    for call, status, message in cases:
        with pytest.raises(ToxiproxyError) as caught:
            call()
        assert caught.value.status == status and (message is None or caught.value.message == message)
    proxy.delete()
    with pytest.raises(ToxiproxyError, match="404: proxy not found"):
        proxy.delete()


def test_our_client_populates_resets_and_reads_the_version(ours):
    client, upstream, web = ours
    made = client.populate([{"name": "a", "upstream": upstream, "listen": "127.0.0.1:0"},
                            {"name": "b", "upstream": upstream, "listen": "127.0.0.1:0", "enabled": False}])
    assert [(p.name, p.enabled) for p in made] == [("a", True), ("b", False)]
    made[0].add_toxic("noop")
    client.reset()
    assert all(p.enabled for p in client.proxies().values()) and client.get("a").toxics() == []
    assert client.version() == "2.12.0" and client.populate([]) == []
    with pytest.raises(ToxiproxyError) as caught:
        client.populate([{"upstream": upstream, "listen": "127.0.0.1:0"}])
    assert caught.value.message == "missing required field: name at proxy 1" and caught.value.body["proxies"] is None


def test_our_client_closes_its_connection_pool_and_refuses_a_bad_url():
    with no_leaks():
        with ToxiproxyServer() as server:
            client = ToxiproxyClient(server.api_url)
            assert client.proxies() == {}
            client.close()
            with pytest.raises(RuntimeError):
                client.proxies()
    with pytest.raises(ValueError, match="url"):
        ToxiproxyClient("")
