"""Trace files: formats, mappings, cuts, and errors that name file, line and column."""

from __future__ import annotations

import json

import pytest

from kvsim.errors import ConfigError
from kvsim.workloads.trace_file import TraceError, TraceWorkload, load_trace

AZURE = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:15:46.6805900,374,44
2023-11-16 18:15:50.9951690,396,109
2023-11-16 18:15:51.3207630,879,34
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_azure_format_needs_no_mapping(tmp_path):
    t = load_trace(write(tmp_path, "a.csv", AZURE))
    assert t.arrival.tolist() == pytest.approx([0.0, 4.314579, 4.640173])
    assert t.prompt.tolist() == [374, 396, 879] and t.output.tolist() == [44, 109, 34]


def test_the_bundled_azure_trace_loads_whole():
    t = TraceWorkload().generate()
    assert len(t) == 19_366
    assert 3_400 < t.arrival[-1] < 3_700  # about an hour
    assert t.prompt.max() <= 4095 and (t.prompt + t.output <= 4096).all()  # clamped


def test_jsonl_with_a_column_mapping_and_milliseconds(tmp_path):
    lines = [{"t": 0, "in": 10, "out": 5}, {"t": 1500, "in": 20, "out": 7}]
    path = write(tmp_path, "r.jsonl", "\n".join(json.dumps(x) for x in lines))
    t = load_trace(path, {"arrival": "t", "prompt": "in", "output": "out"}, time_unit="ms")
    assert t.arrival.tolist() == [0.0, 1.5] and t.prompt.tolist() == [10, 20]


def test_first_n_window_and_rate_scale(tmp_path):
    text = "arrival,prompt,output\n" + "".join(f"{i},{i + 1},1\n" for i in range(10))
    path = str(write(tmp_path, "r.csv", text))
    assert len(TraceWorkload(path, first_n=4).generate()) == 4
    window = TraceWorkload(path, window=(2.0, 5.0)).generate()
    assert window.arrival.tolist() == [0.0, 1.0, 2.0] and window.prompt.tolist() == [3, 4, 5]
    faster = TraceWorkload(path, rate_scale=2.0).generate()
    assert faster.arrival[-1] == 4.5


@pytest.mark.parametrize(("text", "line", "column", "message"), [
    ("TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.68,3\n", 1, "GeneratedTokens",
     "missing column for the output"),
    ("arrival,prompt,output\n0,5,3\n1,five,3\n", 3, "prompt", "is not a number"),
    ("arrival,prompt,output\n0,5,3\n1,5,-2\n", 3, "output", "is not a length >= 1"),
    ("arrival,prompt,output\n0,0,3\n", 2, "prompt", "is not a length >= 1"),
    ("arrival,prompt,output\n5,5,3\n4,5,3\n", 3, "arrival", "time goes backwards"),
    ("arrival,prompt,output\n0,5,3\nsoon,5,3\n", 3, "arrival", "is not a number"),
    ("arrival,prompt,output\n0,5,\n", 2, "output", "missing value"),
])
def test_a_malformed_trace_names_file_line_and_column(tmp_path, text, line, column, message):
    path = write(tmp_path, "bad.csv", text)
    with pytest.raises(TraceError) as info:
        load_trace(path)
    error = info.value
    assert (error.path, error.line, error.column) == (str(path), line, column)
    assert message in str(error) and str(error).startswith(f"{path}:{line}: column ")


def test_bad_jsonl_names_the_line(tmp_path):
    path = write(tmp_path, "bad.jsonl", '{"arrival": 0, "prompt": 1, "output": 1}\n{oops\n')
    with pytest.raises(TraceError, match=r"bad.jsonl:2: .*not valid JSON"):
        load_trace(path)


def test_a_missing_file_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        TraceWorkload("/no/such/trace.csv")
    assert info.value.key == "workload.path"
