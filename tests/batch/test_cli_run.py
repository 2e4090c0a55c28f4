"""`shardflow run` end to end: real processes over files of thousands of instances."""

from __future__ import annotations

from pathlib import Path

import orjson

from support.e2e import CliRun, by_id, flow, read_results, write_jsonl


def test_every_id_once_with_its_context(cli: CliRun, tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", ({"id": i, "value": i} for i in range(3000)))
    out = tmp_path / "out.jsonl"
    summary = tmp_path / "summary.json"
    proc = cli("run", flow("echo"), "--input", str(inp), "--output", str(out), "--workers", "2",
               "--summary-json", str(summary))
    assert proc.returncode == 0, proc.stderr
    results = by_id(read_results(out))
    assert set(results) == set(range(3000))
    for i, result in results.items():
        assert result["status"] == "completed"
        assert result["context"]["double"] == {"value": 2 * i}
        assert result["context"]["label"] == f"item-{i}"
        assert result["error"] is None and result["attempts"] == 1
        assert set(result) == {"id", "status", "context", "error", "attempts", "started_at",
                               "duration_ms"}
    assert "3000 instances" in proc.stderr and "completed 3000" in proc.stderr
    assert "p50" in proc.stderr and "p99" in proc.stderr
    data = orjson.loads(summary.read_bytes())
    assert data["counts"] == {"completed": 3000}
    assert data["instances_per_second"] > 0
    assert {s["step"] for s in data["slowest_steps"]} == {"double", "label"}


def test_ordered_output_follows_input(cli: CliRun, tmp_path: Path) -> None:
    ids = [f"k{i}" for i in range(2000)]
    inp = write_jsonl(tmp_path / "in.jsonl", ({"id": k, "value": 1} for k in ids))
    out = tmp_path / "out.jsonl"
    proc = cli("run", flow("echo"), "--input", str(inp), "--output", str(out), "--workers", "2",
               "--max-in-flight", "50", "--ordered")
    assert proc.returncode == 0, proc.stderr
    assert [r["id"] for r in read_results(out)] == ids


def test_ids_default_to_line_numbers_and_stdout_output(cli: CliRun) -> None:
    proc = cli("run", flow("echo"), "--input", "-", "--workers", "1",
               stdin='{"value": 1}\n{"value": 2}\n')
    assert proc.returncode == 0, proc.stderr
    results = by_id([orjson.loads(line) for line in proc.stdout.splitlines()])
    assert results[1]["context"]["double"] == {"value": 2}
    assert results[2]["context"]["double"] == {"value": 4}


def test_generate(cli: CliRun, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    proc = cli("run", "shardflow.examples.notify:workflow", "--generate", "500",
               "--output", str(out), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    results = by_id(read_results(out))
    assert set(results) == set(range(500))
    assert all(r["context"]["channels"] == ["email", "slack", "sms"] for r in results.values())


def test_csv_and_json_inputs(cli: CliRun, tmp_path: Path) -> None:
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("id,name\na,Ann\nb,Bob\n")
    out = tmp_path / "out.jsonl"
    proc = cli("run", flow("echo"), "--input", str(csv_in), "--output", str(out), "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert {r["id"]: r["context"]["name"] for r in read_results(out)} == {"a": "Ann", "b": "Bob"}
    json_in = tmp_path / "in.json"
    json_in.write_bytes(orjson.dumps([{"id": 1, "value": 5}, {"id": 2, "value": 6}]))
    out2 = tmp_path / "out2.jsonl"
    proc = cli("run", flow("echo"), "--input", str(json_in), "--output", str(out2), "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert {r["id"]: r["context"]["double"]["value"] for r in read_results(out2)} == {1: 10, 2: 12}


def test_config_file_sets_run_options(cli: CliRun, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("[run]\nworkers = 1\nmax_in_flight = 10\nordered = true\n")
    inp = write_jsonl(tmp_path / "in.jsonl", ({"id": i} for i in range(300)))
    out = tmp_path / "out.jsonl"
    proc = cli("run", flow("echo"), "--input", str(inp), "--output", str(out), "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert [r["id"] for r in read_results(out)] == list(range(300))


def test_validate_and_graph(cli: CliRun) -> None:
    ok = cli("validate", "shardflow.examples.chord:workflow")
    assert ok.returncode == 0 and "valid" in ok.stdout
    bad = cli("validate", flow("broken"))
    assert bad.returncode == 1
    assert "nowhere" in bad.stderr
    mermaid = cli("graph", "shardflow.examples.chord:workflow")
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("flowchart TD")
    assert "fetch_api1" in mermaid.stdout
    dot = cli("graph", "shardflow.examples.notify:workflow", "--format", "dot")
    assert '"process" -> "send_email"' in dot.stdout
