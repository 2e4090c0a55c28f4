"""Bad input: each bad record fails alone with its line number; load errors exit 2 cleanly."""

from __future__ import annotations

from pathlib import Path

from support.e2e import CliRun, by_id, flow, read_results


def test_bad_lines_become_invalid_input_records(cli: CliRun, tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": 1, "value": 1}\n{"id": 2, oops}\n[1, 2]\n\n{"id": 5, "value": 5}\n'
                   '{"id": 1, "value": 9}\n')
    out = tmp_path / "out.jsonl"
    proc = cli("run", flow("echo"), "--input", str(inp), "--output", str(out), "--workers", "1")
    assert proc.returncode == 1, proc.stderr
    results = read_results(out)
    assert len(results) == 6
    invalid = {r["error"]["line"]: r for r in results if r["status"] == "invalid_input"}
    assert set(invalid) == {2, 3, 4, 6}
    assert "malformed JSON" in invalid[2]["error"]["message"]
    assert "expected a JSON object" in invalid[3]["error"]["message"]
    assert "empty line" in invalid[4]["error"]["message"]
    assert "duplicate id 1" in invalid[6]["error"]["message"]
    assert all(r["error"]["source"] == str(inp) for r in invalid.values())
    completed = [r for r in results if r["status"] == "completed"]
    assert sorted(r["id"] for r in completed) == [1, 5]
    assert "invalid_input 4" in proc.stderr


def test_csv_row_with_wrong_field_count(cli: CliRun, tmp_path: Path) -> None:
    inp = tmp_path / "in.csv"
    inp.write_text("id,value\n1,2\n2,3,4\n3,5\n")
    out = tmp_path / "out.jsonl"
    proc = cli("run", flow("echo"), "--input", str(inp), "--output", str(out), "--workers", "1")
    assert proc.returncode == 1
    results = read_results(out)
    bad = [r for r in results if r["status"] == "invalid_input"]
    assert len(bad) == 1 and "expected 2 fields, got 3" in bad[0]["error"]["message"]
    assert bad[0]["error"]["line"] == 3
    assert sorted(r["id"] for r in results if r["status"] == "completed") == ["1", "3"]


def test_non_json_step_result_fails_only_its_instance(cli: CliRun, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = cli("run", flow("not_json"), "--generate", "10", "--output", str(out), "--workers", "1")
    assert proc.returncode == 1
    results = by_id(read_results(out))
    assert results[3]["status"] == "failed"
    assert results[3]["error"]["type"] == "ContextValueError"
    assert "'double'" in results[3]["error"]["message"]
    assert all(results[i]["status"] == "completed" for i in range(10) if i != 3)


def test_load_errors_exit_2_without_traceback(cli: CliRun, tmp_path: Path) -> None:
    cases = {
        "missing input": (["run", flow("echo"), "--input", str(tmp_path / "nope.jsonl")],
                          "does not exist"),
        "unknown module": (["run", "no_such_module_xyz:workflow", "--generate", "1"],
                           "no module named 'no_such_module_xyz'"),
        "missing attribute": (["run", flow("nothing_here"), "--generate", "1"],
                              "has no attribute 'nothing_here'"),
        "not a workflow": (["run", flow("not_a_workflow"), "--generate", "1"],
                           "not a WorkflowDefinition"),
        "invalid definition": (["run", flow("broken"), "--generate", "1"], "nowhere"),
        "undeclared limit": (["run", flow("limited"), "--generate", "1"], "email_api"),
        "bad config": (["run", flow("echo"), "--generate", "1", "--config",
                        str(tmp_path / "none.toml")], "does not exist"),
    }
    for name, (args, expected) in cases.items():
        proc = cli(*args)
        assert proc.returncode == 2, (name, proc.stderr)
        assert expected in proc.stderr, (name, proc.stderr)
        assert "Traceback" not in proc.stderr, name
    debug = cli("--debug", "run", flow("not_a_workflow"), "--generate", "1")
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_worker_that_cannot_import_fails_the_run_at_start(cli: CliRun) -> None:
    target = str(Path(__file__).with_name("fails_in_worker.py")) + ":workflow"
    proc = cli("run", target, "--generate", "100", "--workers", "2", timeout=60)
    assert proc.returncode == 2
    assert "refuses to load in a worker" in proc.stderr
