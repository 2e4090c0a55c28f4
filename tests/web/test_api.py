"""The JSON API through Litestar's test client: every endpoint and every bad input."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from shardflow.store.tasks import SQLiteTaskStore
from web.inbox_helpers import ORDER_SCHEMA, TOKEN, Api, made_run, needs_web

pytestmark = needs_web

SIMPLE = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


def _two_runs(tmp_path: Path) -> tuple[Path, Path]:
    """Run a: tasks at t=1000, 1001, 1002; run b: t=1000.5, 1001.5 (interleaved in time)."""
    a, b = tmp_path / "a", tmp_path / "b"
    made_run(a, [("1", "legal", None, SIMPLE), ("2", "finance", "bob", SIMPLE),
                 ("3", "legal", "ann", ORDER_SCHEMA)])
    made_run(b, [("x", "legal", "bob", SIMPLE), ("y", "finance", None, SIMPLE)], created=1000.5)
    return a, b


def test_tasks_are_listed_oldest_first_across_runs(tmp_path: Path, serve: Any) -> None:
    api = serve(list(_two_runs(tmp_path)))
    body = api.get("/api/tasks").json()
    assert body["total"] == 5
    assert [(t["run"], t["instance_id"]) for t in body["tasks"]] == [
        ("a", "1"), ("b", "x"), ("a", "2"), ("b", "y"), ("a", "3")]
    assert set(body["tasks"][0]) >= {"id", "title", "node", "step", "assignee", "created_at"}


def test_tasks_are_filtered_by_run_node_step_and_assignee(tmp_path: Path, serve: Any) -> None:
    api = serve(list(_two_runs(tmp_path)))

    def ids(query: str) -> list[str]:
        response = api.get(f"/api/tasks?{query}")
        assert response.status_code == 200, response.text
        return [t["instance_id"] for t in response.json()["tasks"]]

    assert ids("run=b") == ["x", "y"]
    assert ids("step=legal") == ["1", "x", "3"]
    assert ids("node=review&step=finance&run=a") == ["2"]
    assert ids("node=elsewhere") == []
    assert ids("assignee=bob") == ["x", "2"]


def test_tasks_are_paginated(tmp_path: Path, serve: Any) -> None:
    api = serve(list(_two_runs(tmp_path)))
    first = api.get("/api/tasks?limit=2").json()
    second = api.get("/api/tasks?limit=2&offset=2").json()
    last = api.get("/api/tasks?limit=2&offset=4").json()
    assert (first["total"], first["offset"], first["limit"]) == (5, 0, 2)
    pages = [t["instance_id"] for p in (first, second, last) for t in p["tasks"]]
    assert pages == ["1", "x", "2", "y", "3"]
    for bad in ("limit=0", "limit=501", "offset=-1", "limit=ten"):
        response = api.get(f"/api/tasks?{bad}")
        assert response.status_code == 400, bad
        assert response.json()["extra"][0]["key"] in ("limit", "offset")


def test_inbox_counts_open_tasks_per_run_and_node(tmp_path: Path, serve: Any) -> None:
    api = serve(list(_two_runs(tmp_path)))
    runs = api.get("/api/inbox").json()["runs"]
    assert [(r["run"], r["open"]) for r in runs] == [("a", 3), ("b", 2)]
    assert [(g["step"], g["open"], g["oldest"]) for g in runs[0]["nodes"]] == [
        ("legal", 2, 1000.0), ("finance", 1, 1001.0)]
    mine = api.get("/api/inbox?assignee=bob").json()["runs"]
    assert [(r["run"], r["open"]) for r in mine] == [("a", 1), ("b", 1)]


def test_a_task_is_shown_with_its_form_schema(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    api = serve([a])
    task = api.get("/api/runs/a/tasks/a-t2").json()
    assert task["title"] == "Review legal 3"
    assert task["form_schema"] == ORDER_SCHEMA
    assert (task["assignee"], task["completed_at"], task["context"]) == ("ann", None, {})


def test_unknown_runs_tasks_and_path_tricks_get_404(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    api = serve([a])
    for path in ("/api/runs/a/tasks/nope", "/api/runs/zz/tasks/a-t0", "/api/runs/%2E%2E/tasks/a-t0",
                 "/api/runs/..%2F..%2Fetc/tasks/a-t0", "/api/runs/a%2F..%2Fb", "/api/runs/zz",
                 "/api/nothing", "/api/tasks?run=zz"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert "Traceback" not in response.text
    assert api.get("/api/runs/zz").json()["detail"] == \
        "no run named 'zz' is served here (served: a)"
    assert api.get("/api/runs/a/tasks/nope").json()["detail"] == "human task 'nope' not found"
    assert api.post("/api/runs/%2E%2E/tasks/a-t0/complete", json={"ok": True}).status_code == 404
    assert api.post("/api/runs/zz/resume").status_code == 404


def test_completing_a_task_records_data_and_user_in_the_clis_store(tmp_path: Path,
                                                                    serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    api = serve([a], user="carol")
    response = api.post("/api/runs/a/tasks/a-t0/complete", json={"ok": True})
    assert response.status_code == 200, response.text
    assert response.json()["task"]["completed_by"] == "carol"
    assert response.json()["instance_ready"] is True
    store = SQLiteTaskStore(a / "tasks.db")
    try:
        task = store.get_task("a-t0")
    finally:
        store.close()
    assert (task.data, task.completed_by) == ({"ok": True}, "carol")
    assert [t["id"] for t in api.get("/api/tasks").json()["tasks"]] == ["a-t1", "a-t2"]


def test_invalid_data_lists_every_violation_with_its_pointer(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    api = serve([a])
    bad = {"approved": "yes", "amount": -1, "count": 1.5, "risk": "medium",
           "owner": {"a/b~c": 3}, "tags": "x"}
    response = api.post("/api/runs/a/tasks/a-t2/complete", json=bad)
    assert response.status_code == 422
    found = {(v["pointer"], v["message"]) for v in response.json()["violations"]}
    assert found == {
        ("/approved", "'yes' is not of type 'boolean'"),
        ("/amount", "-1 is less than the minimum of 0"),
        ("/count", "1.5 is not of type 'integer'"),
        ("/risk", "'medium' is not one of ['low', 'high']"),
        ("/owner/name", "'name' is a required property"),
        ("/owner/a~1b~0c", "3 is not of type 'string'"),
        ("/tags", "'x' is not of type 'array'"),
    }
    assert api.get("/api/runs/a/tasks/a-t2").json()["completed_at"] is None
    missing = api.post("/api/runs/a/tasks/a-t2/complete", json={}).json()["violations"]
    assert [v["pointer"] for v in missing] == ["/approved", "/risk", "/owner"]


def test_data_outside_the_data_contract_is_a_422_and_the_task_stays_open(
        tmp_path: Path, serve: Any) -> None:
    """As with 'shardflow tasks complete': an integer orjson cannot write is named, not a 500."""
    a, _ = _two_runs(tmp_path)
    api = serve([a])
    response = api.post("/api/runs/a/tasks/a-t2/complete",
                        content=b'{"approved": true, "risk": "low", "owner": {"name": "x"}, '
                                b'"amount": 1180591620717411303424}',
                        headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    [violation] = response.json()["violations"]
    assert violation["pointer"] == "/amount" and "64-bit" in violation["message"]
    assert api.get("/api/runs/a/tasks/a-t2").json()["completed_at"] is None


def test_bodies_that_are_not_a_json_object_are_refused(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    api = serve([a])
    url = "/api/runs/a/tasks/a-t0/complete"
    not_json = api.post(url, content=b"{approved: yes", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    assert "JSON is malformed" in not_json.json()["detail"]
    assert api.post(url, content=b"", headers={"content-type": "application/json"}).status_code == 400
    array = api.post(url, json=[{"ok": True}])
    assert array.status_code == 422
    assert array.json()["violations"] == [
        {"pointer": "", "message": "form data must be a JSON object, got list"}]
    huge = api.post(url, content=b'{"ok": "' + b"x" * 300_000 + b'"}',
                    headers={"content-type": "application/json"})
    assert huge.status_code == 413
    assert api.get("/api/runs/a/tasks/a-t0").json()["completed_at"] is None


def test_a_second_completion_gets_409_naming_who_took_it(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    api = serve([a], user="ann")
    assert api.post("/api/runs/a/tasks/a-t0/complete", json={"ok": True}).status_code == 200
    again = api.post("/api/runs/a/tasks/a-t0/complete", json={"ok": False})
    assert again.status_code == 409
    assert again.json()["completed_by"] == "ann"
    assert "already completed by ann" in again.json()["detail"]


def test_a_task_completed_from_the_shell_is_taken_for_the_page(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    api = serve([a])
    store = SQLiteTaskStore(a / "tasks.db")  # what 'shardflow tasks complete' does
    try:
        store.complete_task("a-t1", {"ok": True}, "shell-user")
    finally:
        store.close()
    response = api.post("/api/runs/a/tasks/a-t1/complete", json={"ok": False})
    assert (response.status_code, response.json()["completed_by"]) == (409, "shell-user")


def test_concurrent_completions_exactly_one_wins(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    clients = [serve([a], user=f"user{i}") for i in range(6)]
    barrier = threading.Barrier(len(clients))
    codes: list[int] = []

    def complete(api: Api) -> None:
        barrier.wait()
        codes.append(api.post("/api/runs/a/tasks/a-t0/complete", json={"ok": True}).status_code)

    threads = [threading.Thread(target=complete, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] + [409] * 5


def test_assignee_only_restricts_listing_and_completing(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    api = serve([a], user="bob", assignee_only=True)
    assert [t["id"] for t in api.get("/api/tasks").json()["tasks"]] == ["a-t1"]
    assert api.get("/api/tasks?assignee=ann").status_code == 403
    assert api.get("/api/runs/a/tasks/a-t0").status_code == 403  # nor shown
    refused = api.post("/api/runs/a/tasks/a-t0/complete", json={"ok": True})
    assert refused.status_code == 403
    assert "not assigned to 'bob'" in refused.json()["detail"]
    assert api.post("/api/runs/a/tasks/a-t1/complete", json={"ok": True}).status_code == 200
    session = api.get("/api/session").json()
    assert (session["user"], session["assignee_only"]) == ("bob", True)


def test_every_request_needs_the_token_before_routing(tmp_path: Path, serve: Any) -> None:
    """Only the page's own files load without it; nothing else answers, not even 404/405."""
    a, _ = _two_runs(tmp_path)
    api = serve([a], login=False)
    for path in ("/api/tasks", "/api/session", "/api/schema/openapi.json", "/nope",
                 "/static/nope.js", "/api/runs/a/tasks/a-t0/complete"):
        response = api.get(path)
        assert response.status_code == 401, path
        assert response.headers["x-frame-options"] == "DENY", "the guard's answers are secured"
    assert api.post("/", json={}).status_code == 401  # a 405 would tell the route exists
    assert api.get("/api/tasks", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert api.get("/?token=wrong").status_code == 401
    assert api.get("/api/tasks", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert api.get(f"/?token={TOKEN}").status_code == 200  # the page, which keeps the token


def test_cookies_grant_nothing(tmp_path: Path, serve: Any) -> None:
    """Browsers send a host's cookies to every port of it: no cookie is trusted, none is set,
    and a stale cookie of an earlier server on this port is harmless."""
    a, _ = _two_runs(tmp_path)
    api = serve([a], login=False)
    page = api.get(f"/?token={TOKEN}", follow_redirects=False)
    assert "set-cookie" not in page.headers
    for cookie in (f"shardflow_token_8765={TOKEN}", f"shardflow_token={TOKEN}"):
        assert api.get("/api/tasks", headers={"cookie": cookie}).status_code == 401
    authed = serve([a])
    stale = {"cookie": "shardflow_csrf_8765=old; shardflow_token_8765=old"}
    assert authed.post("/api/runs/a/tasks/a-t0/complete", json={"ok": True},
                       headers=stale).status_code == 200


def test_no_token_mode_serves_without_one(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    api = serve([a], token=None, login=False)
    assert api.get("/api/tasks").json()["total"] == 3


def test_a_foreign_host_header_is_refused(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    api = serve([a], token=None, login=False)
    response = api.get("/api/tasks", headers={"host": "attacker.example:8765"})
    assert response.status_code == 400
    assert "attacker.example" in response.json()["detail"]
    for host in ("localhost:8765", "127.0.0.1", "[::1]:8765"):
        assert api.get("/api/tasks", headers={"host": host}).status_code == 200, host


def test_state_changes_need_this_servers_origin(tmp_path: Path, serve: Any) -> None:
    """A page on another port (same site, another origin) cannot complete or resume."""
    a, _ = _two_runs(tmp_path)
    api = serve([a])
    url = "/api/runs/a/tasks/a-t0/complete"
    for headers in ({"origin": "http://127.0.0.1:9999"}, {"origin": "http://localhost:8765"},
                    {"origin": "null"}, {"origin": None, "sec-fetch-site": "same-site"},
                    {"origin": None}):
        for path in (url, "/api/runs/a/resume"):
            response = api.post(path, json={"ok": True}, headers=headers)
            assert response.status_code == 403, (headers, response.text)
    assert api.get("/api/runs/a/tasks/a-t0").json()["completed_at"] is None
    same = api.post(url, json={"ok": True},
                    headers={"origin": None, "sec-fetch-site": "same-origin"})
    assert same.status_code == 200, same.text


def test_only_json_bodies_are_accepted(tmp_path: Path, serve: Any) -> None:
    """No form body, whatever it smuggles, reaches a handler."""
    a, _ = _two_runs(tmp_path)
    api = serve([a])
    url = "/api/runs/a/tasks/a-t0/complete"
    for kind, body in (("application/x-www-form-urlencoded", b"ok=true&_csrf_token=x"),
                       ("text/plain", b'{"ok": true}'), ("multipart/form-data; boundary=b",
                                                         b"--b\r\n\r\n--b--"),
                       (None, b'{"ok": true}')):
        headers = {"content-type": kind} if kind else {}
        response = api.post(url, content=body, headers=headers)
        assert response.status_code == 415, (kind, response.text)
    resume = api.post("/api/runs/a/resume", content=b"ok=1",
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert resume.status_code == 415
    assert api.get("/api/runs/a/tasks/a-t0").json()["completed_at"] is None


def test_deep_nesting_is_a_400(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    api = serve([a])
    url = "/api/runs/a/tasks/a-t0/complete"
    deep = b'{"ok": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    response = api.post(url, content=deep, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "nests 2001 levels" in response.json()["detail"]
    quoted = b'{"ok": true, "note": "' + b"[" * 2000 + b'"}'  # brackets in a string: text
    assert api.post(url, content=quoted,
                    headers={"content-type": "application/json"}).status_code == 200


def test_loopback_is_decided_by_the_resolved_address() -> None:
    from shardflow.web.guard import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.8.9.10")
    assert is_loopback("localhost")
    for host in ("127.attacker.example", "0.0.0.0", "10.1.2.3"):
        assert not is_loopback(host), host


def test_a_damaged_tasks_db_is_one_clear_error(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    api = serve([a])
    for name in ("tasks.db-wal", "tasks.db-shm"):
        (a / name).unlink(missing_ok=True)
    (a / "tasks.db").write_bytes(b"this is not a database" * 100)
    response = api.get("/api/tasks")
    assert response.status_code == 503
    assert "tasks.db cannot be read" in response.json()["detail"]


def test_the_openapi_document_lists_every_endpoint(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    doc = serve([a]).get("/api/schema/openapi.json").json()
    assert set(doc["paths"]) == {
        "/api/session", "/api/tasks", "/api/tasks/{task_id}", "/api/inbox", "/api/runs",
        "/api/runs/{run}",
        "/api/runs/{run}/resume", "/api/runs/{run}/tasks/{task_id}",
        "/api/runs/{run}/tasks/{task_id}/complete"}


def test_the_page_and_its_files_are_served(tmp_path: Path, serve: Any) -> None:
    a, _ = _two_runs(tmp_path)
    api = serve([a])
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in page.text
    for name, kind in (("app.js", "javascript"), ("form.js", "javascript"), ("style.css", "css")):
        response = api.get(f"/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert api.get("/static/../app.py").status_code == 404
    for response in (page, api.get("/api/tasks")):
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "no-referrer"


def test_a_remote_ref_in_a_stored_schema_is_never_fetched(tmp_path: Path, serve: Any) -> None:
    import http.server

    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"type": "string"}')

    remote = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=remote.serve_forever, daemon=True).start()
    try:
        schema = {"type": "object", "properties": {
            "a": {"$ref": f"http://127.0.0.1:{remote.server_port}/s.json"}}}
        made_run(tmp_path / "r", [("1", "check", None, schema)])
        api = serve([tmp_path / "r"])
        response = api.post("/api/runs/r/tasks/r-t0/complete", json={"a": 1})
    finally:
        remote.shutdown()
        remote.server_close()
    assert response.status_code == 422
    assert "only local $refs" in response.json()["violations"][0]["message"]
    assert hits == []
