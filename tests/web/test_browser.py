"""The page in real headless Chromium (Debian's ``chromium``, driven by Playwright).

Skipped, with the reason, where Playwright or a Chromium binary is missing or cannot start.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shardflow.store.tasks import SQLiteTaskStore
from web.inbox_helpers import ORDER_SCHEMA, Server, approvals_run, made_run, needs_web, output_records

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="Playwright is not installed: pip install playwright")

pytestmark = needs_web

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
APPROVALS = {
    "legal_approval": ("Legal Approved?", ("Legal Concerns", "none")),
    "finance_approval": ("Finance Approved?", ("Budget Code", "B-7")),
    "security_approval": ("Security Approved?", None),
}


def _chromium() -> str | None:
    return os.environ.get("SHARDFLOW_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium binary (apt-get install chromium, or set SHARDFLOW_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except sync_api.Error as exc:
            pytest.skip(f"Chromium at {executable} cannot start: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def _choose(page: Any, question: str, answer: str) -> None:
    """Answer a yes/no field (a radio group named by its label)."""
    page.get_by_role("radiogroup", name=question).get_by_label(answer).check()


def _open_rows(page: Any, expected: int) -> None:
    rows = page.locator("a.task-link")
    sync_api.expect(rows).to_have_count(expected)


def test_approvals_are_completed_and_the_run_resumed_from_the_page(tmp_path: Path,
                                                                  page: Any) -> None:
    run_dir, output = approvals_run(tmp_path, n=3)
    server = Server([run_dir], "--user", "erin", cwd=tmp_path)
    try:
        page.goto(server.url)
        assert "token=" not in page.url  # the token became a cookie
        _open_rows(page, 9)
        counts = page.locator("#counts")
        sync_api.expect(counts).to_contain_text("approvals / security_approval")
        sync_api.expect(page.locator(".run")).to_contain_text("9 open task(s)")

        saw_validation_error = False
        for remaining in range(9, 0, -1):
            first = page.locator("a.task-link").first
            link_href = first.get_attribute("href")
            link = page.locator(f'a.task-link[href="{link_href}"]')
            summary = link.inner_text()
            link.focus()
            page.keyboard.press("Enter")  # the list is keyboard-driven
            sync_api.expect(page).to_have_url(re.compile(re.escape(link_href) + "$"))
            title = summary.partition(" (instance ")[0]
            sync_api.expect(page.locator("#task-title")).to_have_text(title)
            step = (page.locator("#task-meta dd").nth(1).text_content() or "").split(" / ")[1]
            approved_label, text_field = APPROVALS[step]
            _choose(page, approved_label, "Yes")
            if text_field is not None:
                page.get_by_label(text_field[0]).fill(text_field[1])
            if step == "security_approval" and not saw_validation_error:
                page.get_by_role("button", name="Complete task").click()
                error = page.locator('.field[data-pointer="/risk_level"] .error')
                sync_api.expect(error).to_have_text("'risk_level' is a required property")
                sync_api.expect(page.locator('.field[data-pointer="/risk_level"] select')) \
                    .to_have_attribute("aria-invalid", "true")
                saw_validation_error = True
            if step == "security_approval":
                page.locator('.field[data-pointer="/risk_level"] select').select_option(label="low")
            page.keyboard.press("Control+Enter")
            sync_api.expect(page.locator("#inbox-view")).to_be_visible()
            _open_rows(page, remaining - 1)
        assert saw_validation_error

        run_box = page.locator(".run")
        sync_api.expect(run_box).to_contain_text("3 ready to resume")
        run_box.get_by_role("button", name="Resume run").click()
        sync_api.expect(page.locator(".run.succeeded")).to_contain_text("resume: succeeded",
                                                                       timeout=60_000)
        sync_api.expect(run_box).to_contain_text("0 waiting instance(s)")
    finally:
        server.stop()

    records = output_records(output)
    assert sorted(r["id"] for r in records) == [0, 1, 2]  # each id exactly once
    assert all(r["status"] == "completed" for r in records)
    for record in records:
        context = record["context"]
        assert context["legal_approval"] == {"approved": True, "concerns": "none"}
        assert context["finance_approval"] == {"approved": True, "budget_code": "B-7"}
        assert context["security_approval"] == {"approved": True, "risk_level": "low"}
        assert context["all_approved"] is True
    store = SQLiteTaskStore(run_dir / "tasks.db")
    try:
        assert {t.completed_by for t in store.list_tasks(open_only=False)} == {"erin"}
    finally:
        store.close()


def test_the_generated_form_covers_numbers_enums_objects_and_json(tmp_path: Path,
                                                                  page: Any) -> None:
    made_run(tmp_path / "forms", [("7", "order", None, ORDER_SCHEMA)])
    server = Server([tmp_path / "forms"], cwd=tmp_path)
    try:
        page.goto(server.url)
        _open_rows(page, 1)
        page.locator("a.task-link").first.click()
        field = lambda pointer: page.locator(f'.field[data-pointer="{pointer}"]')  # noqa: E731
        field("/amount").locator("input").fill("abc")
        field("/count").locator("input").fill("3")
        field("/owner/a~1b~0c").locator("input").fill("slash and tilde")
        field("/tags").locator("textarea").fill('["a", "b"]')
        page.get_by_role("button", name="Complete task").click()
        sync_api.expect(field("/amount").locator(".error")).to_have_text(
            "'abc' is not of type 'number'")
        sync_api.expect(field("/owner/name").locator(".error")).to_have_text(
            "'name' is a required property")
        sync_api.expect(field("/risk").locator(".error")).to_have_text(
            "'risk' is a required property")
        # A required yes/no left unanswered is named, never sent as "no"; it is first.
        sync_api.expect(field("/approved").locator(".error")).to_have_text(
            "'approved' is a required property")
        sync_api.expect(field("/approved").get_by_label("Yes")).to_be_focused()

        field("/amount").locator("input").fill("12.5")
        field("/owner/name").locator("input").fill("Ann")
        field("/risk").locator("select").select_option(label="high")
        _choose(page, "Approved?", "Yes")
        field("/tags").locator("textarea").fill("[oops")
        page.get_by_role("button", name="Complete task").click()
        sync_api.expect(field("/tags").locator(".error")).to_contain_text("not valid JSON")
        field("/tags").locator("textarea").fill('["a", "b"]')
        page.get_by_role("button", name="Complete task").click()
        _open_rows(page, 0)
    finally:
        server.stop()
    store = SQLiteTaskStore(tmp_path / "forms" / "tasks.db")
    try:
        data = store.get_task("forms-t0").data
    finally:
        store.close()
    assert data == {"approved": True, "amount": 12.5, "count": 3, "risk": "high",
                    "owner": {"name": "Ann", "a/b~c": "slash and tilde"}, "tags": ["a", "b"]}


def test_a_task_taken_meanwhile_says_who_took_it(tmp_path: Path, page: Any) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean", "title": "OK?"}}}
    made_run(tmp_path / "race", [("1", "check", None, schema)])
    server = Server([tmp_path / "race"], cwd=tmp_path)
    try:
        page.goto(server.url)
        page.locator("a.task-link").first.click()
        _choose(page, "OK?", "Yes")
        store = SQLiteTaskStore(tmp_path / "race" / "tasks.db")  # another browser, or the shell
        try:
            store.complete_task("race-t0", {"ok": False}, "frank")
        finally:
            store.close()
        page.get_by_role("button", name="Complete task").click()
        sync_api.expect(page.locator("#form-status")).to_have_text(
            re.compile(r"^This task was already completed by frank on .+\.$"))
        sync_api.expect(page.get_by_role("button", name="Complete task")).to_be_disabled()
        page.keyboard.press("Escape")
        sync_api.expect(page.locator("#inbox-view")).to_be_visible()
        _open_rows(page, 0)
        page.locator("body").press("/")
        sync_api.expect(page.locator("#assignee")).to_be_focused()
    finally:
        server.stop()


def test_the_approver_sees_the_order_and_nothing_typed_is_lost(tmp_path: Path, page: Any) -> None:
    from web.test_approver_view import order_run

    run_dir = order_run(tmp_path, ["ACME", "Globex"])
    server = Server([run_dir], "--user", "erin", cwd=tmp_path)
    dialogs: list[str] = []
    try:
        page.goto(server.url)
        acme = page.locator("a.task-link", has_text="Customer ACME")
        sync_api.expect(acme).to_have_text('Approve order: Customer ACME, Amount 100, Lines '
                                           '[{"sku":"A"}]')
        acme_href = acme.get_attribute("href")
        acme.click()
        sync_api.expect(page.locator("#task-description")).to_have_text(
            "Orders above the automatic limit need a person's approval.")
        shown = page.locator("#task-display")
        sync_api.expect(shown.locator("dt")).to_have_text(
            ["Customer", "Amount", "Lines", "Discount"])
        sync_api.expect(shown.locator("dd")).to_have_text(
            ["ACME", "100", re.compile(r'\[\s*\{\s*"sku":\s*"A"\s*\}\s*\]'),
             "(not in the context)"])
        sync_api.expect(page.locator("#form-title")).to_have_text("Your decision")
        sync_api.expect(page.locator("#form-description")).to_have_text(
            "Approve only orders you have checked against the contract.")

        # Leaving with typed input asks first; "Cancel" keeps the input.
        comment = page.get_by_label("Comment")
        comment.fill("checked the contract")
        page.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.keyboard.press("Escape")
        sync_api.expect(comment).to_have_value("checked the contract")
        assert dialogs and "will be lost" in dialogs[0]
        # A required yes/no left unanswered is an error, not a silent "no".
        page.get_by_role("button", name="Complete task").click()
        sync_api.expect(page.locator('.field[data-pointer="/approved"] .error')).to_have_text(
            "'approved' is a required property")
        _choose(page, "Approve?", "No")
        page.get_by_role("button", name="Complete task").click()
        sync_api.expect(page.locator("#inbox-view")).to_be_visible()
        _open_rows(page, 1)

        # Opened again, a completed task shows what was submitted, read-only.
        page.goto(f"{server.base}/{acme_href}")
        sync_api.expect(page.locator("#form-status")).to_contain_text("completed by erin")
        sync_api.expect(page.get_by_label("Comment")).to_have_value("checked the contract")
        sync_api.expect(page.get_by_role("radiogroup", name="Approve?").get_by_label("No")) \
            .to_be_checked()
        sync_api.expect(page.get_by_label("Comment")).to_be_disabled()
        sync_api.expect(page.get_by_role("button", name="Complete task")).to_be_disabled()
        page.locator("#back").click()
        _open_rows(page, 1)
    finally:
        server.stop()
    # A lost server is said so, not an endless "Loading...".
    page.locator("a.task-link").first.click()
    sync_api.expect(page.locator("#task-title")).to_have_text("Server not reachable")
    sync_api.expect(page.locator("#notice")).to_contain_text("cannot be reached")


ATTACK_PAGE = """<!doctype html><html><body>
<iframe name="sink"></iframe>
<script>
(async () => {
  const target = "TARGET", results = {cookie: document.cookie,
                                     storage: localStorage.getItem("shardflow-token")};
  const post = async (path, init) => {
    try {
      const r = await fetch(target + path, {method: "POST", credentials: "include", ...init});
      return r.type === "opaque" ? "opaque" : r.status;
    } catch (e) { return "blocked"; }
  };
  const form = "approved=true&comment=attacker&_csrf_token=" + encodeURIComponent(document.cookie);
  results.urlencoded = await post("/api/runs/RUN/tasks/TASK/complete", {mode: "no-cors",
    headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: form});
  results.plain = await post("/api/runs/RUN/tasks/TASK/complete", {mode: "no-cors",
    headers: {"Content-Type": "text/plain"}, body: JSON.stringify({approved: true})});
  results.json = await post("/api/runs/RUN/tasks/TASK/complete", {
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({approved: true})});
  results.resume = await post("/api/runs/RUN/resume", {mode: "no-cors"});
  try { results.read = (await fetch(target + "/api/tasks", {credentials: "include"})).status; }
  catch (e) { results.read = "blocked"; }
  const f = document.createElement("form");
  f.method = "POST"; f.target = "sink"; f.action = target + "/api/runs/RUN/tasks/TASK/complete";
  f.enctype = "text/plain";
  const field = document.createElement("input");
  field.name = '{"approved": true, "x": "'; field.value = '"}';
  f.append(field); document.body.append(f);
  await new Promise((resolve) => { document.querySelector("iframe").onload = resolve; f.submit(); });
  window.done = results;
})();
</script></body></html>"""


def test_a_page_on_another_local_port_can_neither_act_nor_learn_the_token(
        tmp_path: Path, page: Any) -> None:
    import http.server
    import threading

    made_run(tmp_path / "victim", [("1", "check", None, {"type": "object"})])
    server = Server([tmp_path / "victim"], "--auto-resume", cwd=tmp_path)
    seen: list[str] = []

    class Attacker(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(str(self.headers))  # what the browser sent this port (cookies?)
            body = ATTACK_PAGE.replace("TARGET", server.base).replace("RUN", "victim") \
                .replace("TASK", "victim-t0").encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    attacker = http.server.HTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        page.goto(server.url)  # the victim is logged in: the page holds the token
        _open_rows(page, 1)
        page.goto(f"http://127.0.0.1:{attacker.server_port}/attack.html")
        page.wait_for_function("window.done !== undefined")
        results = page.evaluate("window.done")
        assert results["storage"] is None and server.token not in results["cookie"]
        assert results["json"] == "blocked" and results["read"] == "blocked"  # CORS refused
        assert not any(server.token in headers for headers in seen)
        store = SQLiteTaskStore(tmp_path / "victim" / "tasks.db")
        try:
            assert store.get_task("victim-t0").completed_at is None, "the attack completed it"
        finally:
            store.close()
        import urllib.request

        request = urllib.request.Request(f"{server.base}/api/runs/victim",
                                         headers={"Authorization": f"Bearer {server.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            state = json.loads(response.read())
        assert state["resume"]["status"] == "idle", "the attack started a resume"
    finally:
        attacker.shutdown()
        attacker.server_close()
        server.stop()


def test_after_a_restart_on_the_same_port_the_new_url_works_and_the_old_tab_says_why_not(
        tmp_path: Path, page: Any) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean", "title": "OK?"}}}
    made_run(tmp_path / "r", [("1", "check", None, schema), ("2", "check", None, schema)])
    first = Server([tmp_path / "r"], cwd=tmp_path)
    port = first.base.rsplit(":", 1)[1]
    page.goto(first.url)
    _open_rows(page, 2)
    first.stop()
    second = Server([tmp_path / "r"], "--port", port, cwd=tmp_path)
    try:
        assert second.base == first.base and second.token != first.token
        page.reload()  # the page still holds the first server's token: it says what to do
        sync_api.expect(page.locator("#notice")).to_contain_text("open the URL")
        page.goto(second.url)  # the newly printed URL replaces the stored token
        page.locator("a.task-link").first.click()
        _choose(page, "OK?", "Yes")
        page.get_by_role("button", name="Complete task").click()
        _open_rows(page, 1)
    finally:
        second.stop()
