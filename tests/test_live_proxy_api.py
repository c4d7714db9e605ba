"""The HTTP API answers as Toxiproxy 2.12 does (spec §1-§4 and checklist items 1-10): shapes and field
order, status codes, the exact error messages, /populate, /reset, /version, the browser guard; and
bad input is refused with a clear 400 in Toxiproxy's error shape."""
import json
import socket

import httpx
import pytest

from live_support import no_leaks
from resilience_sim.live.proxy import ToxiproxyServer
from resilience_sim.live.server import Handler, LoopbackServer


class Hello(Handler):
    def do_GET(self):
        self.send_json(200, b'{"hello":true}')


@pytest.fixture
def api():
    """(httpx client on the API, the server, an HTTP upstream's address), checked for leaks."""
    with no_leaks():
        with LoopbackServer(Hello) as upstream, ToxiproxyServer() as server, \
                httpx.Client(base_url=server.api_url) as client:
            yield client, server, f"127.0.0.1:{upstream.port}"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create(client, name, upstream, listen="127.0.0.1:0", **extra):
    response = client.post("/proxies", json={"name": name, "upstream": upstream, "listen": listen, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def assert_error(response, status, message):
    assert response.status_code == status
    assert response.content == json.dumps({"error": message, "status": status}, separators=(",", ":")).encode() + b"\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def port_of(proxy):
    return int(proxy["listen"].rpartition(":")[2])


def get_through(port):
    return httpx.get(f"http://127.0.0.1:{port}/", timeout=5).json()


def test_the_server_binds_loopback_and_stops_leaving_nothing():
    with no_leaks():
        server = ToxiproxyServer(port=0, seed=3)
        with server:
            assert server.api_url == f"http://127.0.0.1:{server.port}" and server.running
            assert httpx.get(server.api_url + "/proxies").json() == {}
        assert not server.running


def test_create_answers_201_with_the_real_port_in_toxiproxys_field_order(api):
    client, server, upstream = api
    response = client.post("/proxies", json={"name": "shop", "upstream": upstream, "listen": "localhost:0"})
    port = port_of(response.json())
    assert response.status_code == 201 and response.headers["content-type"] == "application/json"
    assert response.content == (b'{"name":"shop","listen":"127.0.0.1:%d","upstream":"%s","enabled":true,"toxics":[]}'
                                % (port, upstream.encode()))
    assert port > 0 and get_through(port) == {"hello": True}


def test_create_refuses_a_duplicate_409_a_missing_field_400_and_a_port_in_use_500(api):
    client, server, upstream = api
    create(client, "shop", upstream)
    assert_error(client.post("/proxies", json={"name": "shop", "upstream": upstream}), 409, "proxy already exists")
    assert_error(client.post("/proxies", json={"upstream": upstream}), 400, "missing required field: name")
    assert_error(client.post("/proxies", json={"name": "x", "listen": "127.0.0.1:0"}), 400,
                 "missing required field: upstream")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        response = client.post("/proxies", json={"name": "y", "upstream": upstream, "listen": f"127.0.0.1:{port}"})
    assert_error(response, 500, f"listen tcp 127.0.0.1:{port}: bind: address already in use")
    assert list(client.get("/proxies").json()) == ["shop"]


def test_a_proxy_created_disabled_echoes_its_listen_and_binds_when_enabled(api):
    client, server, upstream = api
    port = free_port()
    created = create(client, "later", upstream, listen=f"localhost:{port}", enabled=False)
    assert created["listen"] == f"localhost:{port}" and created["enabled"] is False
    with pytest.raises(httpx.ConnectError):
        get_through(port)
    enabled = client.patch("/proxies/later", json={"enabled": True}).json()
    assert enabled["listen"] == f"127.0.0.1:{port}" and enabled["enabled"] is True
    assert get_through(port) == {"hello": True}


def test_the_list_is_keyed_by_name_in_order_and_an_unknown_proxy_is_404(api):
    client, server, upstream = api
    for name in ("b", "a", "c"):
        create(client, name, upstream)
    listing = client.get("/proxies")
    assert list(listing.json()) == ["a", "b", "c"] and listing.content.startswith(b'{"a":{"name":"a",')
    assert client.get("/proxies/b").json() == listing.json()["b"]
    assert_error(client.get("/proxies/nope"), 404, "proxy not found")
    assert_error(client.get("/proxies/nope/toxics"), 404, "proxy not found")


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_updates_by_post_and_patch_keep_the_fields_left_out(api, method):
    client, server, upstream = api
    proxy = create(client, "shop", upstream)
    client.post("/proxies/shop/toxics", json={"type": "latency", "attributes": {"latency": 5}})
    other = "127.0.0.1:1"
    updated = client.request(method, "/proxies/shop", json={"upstream": other, "name": "renamed"})
    assert updated.status_code == 200
    body = updated.json()
    assert (body["name"], body["upstream"], body["enabled"]) == ("shop", other, True)
    assert body["listen"] == proxy["listen"] and [t["name"] for t in body["toxics"]] == ["latency_downstream"]
    assert_error(client.request(method, "/proxies/nope", json={}), 404, "proxy not found")


def test_disabling_refuses_new_clients_closes_open_ones_and_reenabling_reuses_the_port(api):
    client, server, upstream = api
    port = port_of(create(client, "shop", upstream))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as open_one:
        open_one.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while not reply.endswith(b'{"hello":true}'):
            reply += open_one.recv(1000)
        assert reply.startswith(b"HTTP/1.1 200")
        disabled = client.post("/proxies/shop", json={"enabled": False}).json()
        assert disabled["enabled"] is False and disabled["listen"] == f"127.0.0.1:{port}"
        assert open_one.recv(10) == b""
    with pytest.raises(httpx.ConnectError):
        get_through(port)
    assert port_of(client.post("/proxies/shop", json={"enabled": True}).json()) == port
    assert get_through(port) == {"hello": True}


def test_a_new_listen_restarts_the_proxy_there_and_a_failed_bind_leaves_it_disabled(api):
    client, server, upstream = api
    old = port_of(create(client, "shop", upstream))
    moved = client.patch("/proxies/shop", json={"listen": "127.0.0.1:0"}).json()
    assert moved["enabled"] and port_of(moved) not in (0, old) and get_through(port_of(moved))
    same = client.patch("/proxies/shop", json={"listen": f"localhost:{port_of(moved)}"}).json()
    assert same["listen"] == moved["listen"]
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        response = client.patch("/proxies/shop", json={"listen": f"127.0.0.1:{port}"})
    assert_error(response, 500, f"listen tcp 127.0.0.1:{port}: bind: address already in use")
    after = client.get("/proxies/shop").json()
    assert after["enabled"] is False and after["listen"] == f"127.0.0.1:{port}"


def test_delete_answers_204_and_empty_then_404(api):
    client, server, upstream = api
    port = port_of(create(client, "shop", upstream))
    response = client.delete("/proxies/shop")
    assert response.status_code == 204 and response.content == b""
    assert_error(client.delete("/proxies/shop"), 404, "proxy not found")
    with pytest.raises(httpx.ConnectError):
        get_through(port)


def test_a_new_toxic_answers_200_with_toxiproxys_defaults_and_field_order(api):
    client, server, upstream = api
    create(client, "shop", upstream)
    response = client.post("/proxies/shop/toxics", json={"type": "latency"})
    assert response.status_code == 200
    assert response.content == (b'{"attributes":{"latency":0,"jitter":0},"name":"latency_downstream",'
                                b'"type":"latency","stream":"downstream","toxicity":1}')
    half = client.post("/proxies/shop/toxics", json={"type": "slicer", "stream": "UpStream", "toxicity": 0.5,
                                                     "attributes": {"average_size": 10}}).json()
    assert half == {"attributes": {"average_size": 10, "size_variation": 0, "delay": 0},
                    "name": "slicer_UpStream", "type": "slicer", "stream": "UpStream", "toxicity": 0.5}
    plain = client.post("/proxies/shop/toxics", json={"type": "noop", "name": "n", "attributes": None})
    assert plain.status_code == 200 and plain.json()["attributes"] == {}


def test_toxic_names_are_unique_across_streams_and_bad_streams_or_types_are_400(api):
    client, server, upstream = api
    create(client, "shop", upstream)
    client.post("/proxies/shop/toxics", json={"type": "latency", "name": "slow"})
    assert_error(client.post("/proxies/shop/toxics", json={"type": "latency", "name": "slow", "stream": "upstream"}),
                 409, "toxic already exists")
    assert_error(client.post("/proxies/shop/toxics", json={"type": "latency", "stream": "sideways"}),
                 400, "stream was invalid, can be either upstream or downstream")
    assert_error(client.post("/proxies/shop/toxics", json={"type": "down"}), 400, "invalid toxic type")
    assert_error(client.post("/proxies/nope/toxics", json={"type": "latency"}), 404, "proxy not found")


def test_toxics_are_listed_upstream_first_then_downstream_in_insertion_order(api):
    client, server, upstream = api
    create(client, "shop", upstream)
    for name, stream in (("d1", "downstream"), ("u1", "upstream"), ("d2", "downstream"), ("u2", "upstream")):
        client.post("/proxies/shop/toxics", json={"type": "noop", "name": name, "stream": stream})
    assert [t["name"] for t in client.get("/proxies/shop/toxics").json()] == ["u1", "u2", "d1", "d2"]
    assert client.get("/proxies/shop/toxics/u2").json()["stream"] == "upstream"
    assert_error(client.get("/proxies/shop/toxics/nope"), 404, "toxic not found")
    assert_error(client.get("/proxies/nope/toxics/u2"), 404, "proxy not found")
    create(client, "empty", upstream)
    assert client.get("/proxies/empty/toxics").content == b"[]"


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_toxic_update_merges_attributes_and_changes_only_attributes_and_toxicity(api, method):
    client, server, upstream = api
    create(client, "shop", upstream)
    client.post("/proxies/shop/toxics", json={"type": "latency", "attributes": {"latency": 100, "jitter": 10}})
    response = client.request(method, "/proxies/shop/toxics/latency_downstream",
                              json={"attributes": {"jitter": 20}, "toxicity": 0.25, "type": "timeout",
                                    "stream": "upstream", "name": "other"})
    assert response.status_code == 200
    assert response.json() == {"attributes": {"latency": 100, "jitter": 20}, "name": "latency_downstream",
                               "type": "latency", "stream": "downstream", "toxicity": 0.25}
    kept = client.request(method, "/proxies/shop/toxics/latency_downstream", json={}).json()
    assert kept["toxicity"] == 0.25 and kept["attributes"]["jitter"] == 20
    assert_error(client.request(method, "/proxies/shop/toxics/nope", json={}), 404, "toxic not found")


def test_a_toxic_delete_answers_204_then_404(api):
    client, server, upstream = api
    create(client, "shop", upstream)
    client.post("/proxies/shop/toxics", json={"type": "noop"})
    response = client.delete("/proxies/shop/toxics/noop_downstream")
    assert response.status_code == 204 and response.content == b""
    assert_error(client.delete("/proxies/shop/toxics/noop_downstream"), 404, "toxic not found")


def test_populate_keeps_unchanged_entries_with_their_toxics_and_replaces_changed_ones(api):
    client, server, upstream = api
    fixed = free_port()
    entries = [{"name": "kept", "upstream": upstream, "listen": f"127.0.0.1:{fixed}"},
               {"name": "moved", "upstream": upstream, "listen": "127.0.0.1:0"}]
    first = client.post("/populate", json=entries)
    assert first.status_code == 201 and [p["name"] for p in first.json()["proxies"]] == ["kept", "moved"]
    for name in ("kept", "moved"):
        client.post(f"/proxies/{name}/toxics", json={"type": "noop"})
    entries[0]["listen"] = f"localhost:{fixed}"                 # the same address, written differently
    again = client.post("/populate", json=entries).json()["proxies"]
    assert [len(p["toxics"]) for p in again] == [1, 0]           # port 0 never matches: replaced
    assert again[0]["listen"] == f"127.0.0.1:{fixed}" and port_of(again[1]) != port_of(first.json()["proxies"][1])
    entries[0]["upstream"] = "127.0.0.1:1"
    replaced = client.post("/populate", json=entries[:1]).json()["proxies"]
    assert replaced[0]["toxics"] == [] and replaced[0]["upstream"] == "127.0.0.1:1"
    assert client.post("/populate", json=[]).content == b'{"proxies":null}'


def test_populate_checks_every_entry_first_and_an_error_names_it_and_changes_nothing(api):
    client, server, upstream = api
    response = client.post("/populate", json=[{"name": "a", "upstream": upstream, "listen": "127.0.0.1:0"},
                                              {"upstream": upstream, "listen": "127.0.0.1:0"}])
    assert response.status_code == 400 and response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "missing required field: name at proxy 2", "status": 400, "proxies": None}
    response = client.post("/populate", json=[{"name": "a", "listen": "127.0.0.1:0"}])
    assert response.json()["error"] == "missing required field: upstream at proxy 1"
    assert client.get("/proxies").json() == {}
    assert client.post("/populate", json={"name": "a"}).json()["error"].startswith("bad request body: ")


def test_populate_failing_mid_way_keeps_the_entries_before_it(api):
    client, server, upstream = api
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        response = client.post("/populate", json=[
            {"name": "first", "upstream": upstream, "listen": "127.0.0.1:0"},
            {"name": "second", "upstream": upstream, "listen": f"127.0.0.1:{port}"},
            {"name": "third", "upstream": upstream, "listen": "127.0.0.1:0"}])
    body = response.json()
    assert response.status_code == 500 and body["status"] == 500
    assert body["error"] == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
    assert [p["name"] for p in body["proxies"]] == ["first"]
    assert list(client.get("/proxies").json()) == ["first"]


def test_reset_answers_204_enables_every_proxy_and_removes_every_toxic(api):
    client, server, upstream = api
    create(client, "off", upstream, listen=f"127.0.0.1:{free_port()}", enabled=False)
    create(client, "on", upstream)
    client.post("/proxies/on", json={"enabled": False})
    for name in ("off", "on"):
        client.post(f"/proxies/{name}/toxics", json={"type": "latency", "stream": "upstream"})
        client.post(f"/proxies/{name}/toxics", json={"type": "timeout", "attributes": {"timeout": 5}})
    response = client.post("/reset")
    assert response.status_code == 204 and response.content == b""
    proxies = client.get("/proxies").json()
    assert all(p["enabled"] and p["toxics"] == [] for p in proxies.values())
    assert get_through(port_of(proxies["off"])) == {"hello": True}


def test_version_is_exactly_toxiproxys_bytes_and_content_type(api):
    client, server, upstream = api
    response = client.get("/version")
    assert response.status_code == 200 and response.content == b'{"version": "2.12.0"}\n'
    assert response.headers["content-type"] == "application/json;charset=utf-8"


def test_a_browser_is_refused_403_on_routed_paths_only(api):
    client, server, upstream = api
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    for path in ("/proxies", "/version"):
        response = client.get(path, headers=browser)
        assert response.status_code == 403 and response.content == b"User agent not allowed\n"
    assert client.get("/nowhere", headers=browser).status_code == 404
    assert client.get("/version", headers={"User-Agent": "curl/8"}).status_code == 200


def test_unknown_paths_are_404_text_and_wrong_methods_405_empty(api):
    client, server, upstream = api
    for path in ("/nowhere", "/metrics", "/proxies/", "/proxies/a/b/c/d/e"):
        response = client.get(path)
        assert response.status_code == 404 and response.content == b"404 page not found\n"
    for method, path in (("PUT", "/proxies"), ("DELETE", "/version"), ("GET", "/reset"), ("BREW", "/populate")):
        response = client.request(method, path)
        assert response.status_code == 405 and response.content == b""
    assert "x-toxiproxy-request-id" in client.get("/version").headers


@pytest.mark.parametrize("body, detail", [
    (b"", "EOF"), (b"  \n", "EOF"), (b"{not json", "Expecting property name"),
    (b'{"name": NaN}', "invalid character 'N'"), (b"[1, 2]", "cannot unmarshal array into Go value"),
    (b'"shop"', "cannot unmarshal string into Go value"), (b"\xff\xfe", "invalid UTF-8"),
])
def test_malformed_bodies_are_400_bad_request_body(api, body, detail):
    client, server, upstream = api
    response = client.post("/proxies", content=body)
    message = response.json()["error"]
    assert response.status_code == 400 and message.startswith("bad request body: ") and detail in message
    assert client.get("/proxies").json() == {}


def test_values_of_the_wrong_type_are_400_in_the_go_decoders_words(api):
    client, server, upstream = api
    cases = [("/proxies", {"name": 5, "upstream": upstream},
              "json: cannot unmarshal number into Go struct field Proxy.name of type string"),
             ("/proxies", {"name": "x", "upstream": upstream, "enabled": "yes"},
              "json: cannot unmarshal string into Go struct field Proxy.enabled of type bool")]
    for path, body, detail in cases:
        assert_error(client.post(path, json=body), 400, f"bad request body: {detail}")
    create(client, "shop", upstream)
    toxic_cases = [({"type": "latency", "attributes": {"latency": "100"}},
                    "json: cannot unmarshal string into Go struct field LatencyToxic.latency of type int64"),
                   ({"type": "latency", "attributes": {"latency": 1.5}},
                    "json: cannot unmarshal number 1.5 into Go struct field LatencyToxic.latency of type int64"),
                   ({"type": "latency", "toxicity": "all"},
                    "json: cannot unmarshal string into Go struct field ToxicWrapper.toxicity of type float32"),
                   ({"type": "latency", "attributes": [1]},
                    "json: cannot unmarshal array into Go struct field ToxicWrapper.attributes of type toxics.Toxic")]
    for body, detail in toxic_cases:
        assert_error(client.post("/proxies/shop/toxics", json=body), 400, f"bad request body: {detail}")
    assert client.get("/proxies/shop/toxics").json() == []


def test_names_with_a_slash_are_refused(api):
    client, server, upstream = api
    response = client.post("/proxies", json={"name": "a/b", "upstream": upstream, "listen": "127.0.0.1:0"})
    assert response.status_code == 400 and "must not contain '/'" in response.json()["error"]
    create(client, "shop", upstream)
    response = client.post("/proxies/shop/toxics", json={"type": "noop", "name": "x/y"})
    assert response.status_code == 400 and "must not contain '/'" in response.json()["error"]


@pytest.mark.parametrize("listen", ["0.0.0.0:0", ":0", "", "[::1]:0", "10.1.2.3:8000", "127.0.0.2:0"])
def test_a_listen_address_off_loopback_is_refused_400_everywhere(api, listen):
    client, server, upstream = api
    response = client.post("/proxies", json={"name": "x", "upstream": upstream, "listen": listen})
    assert response.status_code == 400 and "loopback-only" in response.json()["error"]
    create(client, "shop", upstream)
    assert client.patch("/proxies/shop", json={"listen": listen}).status_code == 400
    response = client.post("/populate", json=[{"name": "y", "upstream": upstream, "listen": listen}])
    assert response.status_code == 400 and response.json()["error"].endswith("at proxy 1")
    assert list(client.get("/proxies").json()) == ["shop"] and client.get("/proxies/shop").json()["enabled"]


@pytest.mark.parametrize("listen", ["localhost", "127.0.0.1:http", "127.0.0.1:70000"])
def test_a_listen_address_without_a_valid_port_is_a_500_as_in_toxiproxy(api, listen):
    client, server, upstream = api
    response = client.post("/proxies", json={"name": "x", "upstream": upstream, "listen": listen})
    assert response.status_code == 500 and response.json()["error"].startswith(f"listen tcp: address {listen}")


@pytest.mark.parametrize("body, words", [
    ({"type": "bandwidth", "attributes": {"rate": 0}}, "bandwidth.rate must be a whole number >= 1, got 0"),
    ({"type": "bandwidth"}, "bandwidth.rate must be a whole number >= 1"),
    ({"type": "slicer", "attributes": {"average_size": 0}}, "slicer.average_size must be a whole number >= 1"),
    ({"type": "slicer", "attributes": {"average_size": 10, "size_variation": 10}},
     "slicer.size_variation must be a whole number in [0, 9], got 10"),
    ({"type": "latency", "attributes": {"latency": -5}}, "latency.latency must be a whole number >= 0, got -5"),
    ({"type": "limit_data", "attributes": {"bytes": -1}}, "limit_data.bytes must be a whole number >= 0"),
    ({"type": "latency", "toxicity": 1.5}, "toxicity must be in [0, 1], got 1.5"),
])
def test_attributes_a_toxic_cannot_honour_are_refused_400_naming_the_range(api, body, words):
    client, server, upstream = api
    create(client, "shop", upstream)
    response = client.post("/proxies/shop/toxics", json=body)
    assert response.status_code == 400 and words in response.json()["error"]
    assert client.get("/proxies/shop/toxics").json() == []


def test_an_update_that_a_toxic_cannot_honour_is_refused_and_changes_nothing(api):
    client, server, upstream = api
    create(client, "shop", upstream)
    client.post("/proxies/shop/toxics", json={"type": "bandwidth", "attributes": {"rate": 100}})
    response = client.patch("/proxies/shop/toxics/bandwidth_downstream", json={"attributes": {"rate": -1}})
    assert response.status_code == 400 and "bandwidth.rate" in response.json()["error"]
    assert client.patch("/proxies/shop/toxics/bandwidth_downstream", json={"toxicity": -0.1}).status_code == 400
    assert client.get("/proxies/shop/toxics/bandwidth_downstream").json()["attributes"] == {"rate": 100}
    assert client.patch("/proxies/shop/toxics/bandwidth_downstream", content=b"").json()["error"] == \
        "bad request body: EOF"


def test_a_broken_content_length_or_a_huge_body_is_refused_and_the_server_lives_on(api):
    client, server, upstream = api
    for length in (b"abc", b"99999999"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n{}")
            reply = b""
            while piece := sock.recv(1000):     # then the server closes the connection
                reply += piece
        assert reply.startswith(b"HTTP/1.1 400") and b"bad request body" in reply
    assert client.get("/proxies").status_code == 200


def test_a_client_vanishing_mid_request_leaves_the_server_serving(api):
    client, server, upstream = api
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /proxies HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"na")
    chunked = client.post("/proxies", content=iter([b'{"name":"c","upstream":"', upstream.encode(),
                                                    b'","listen":"127.0.0.1:0"}']))
    assert chunked.status_code == 201 and client.get("/proxies/c").status_code == 200


def test_misuse_of_the_server_is_refused_by_name():
    with pytest.raises(ValueError, match="port"):
        ToxiproxyServer(port=70000)
    with pytest.raises(ValueError, match="seed"):
        ToxiproxyServer(seed="one")
    with pytest.raises(ValueError, match="max_connections"):
        ToxiproxyServer(max_connections=0)
