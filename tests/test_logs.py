import json
import logging

from monitor.logs import JsonFormatter, TextFormatter, event, flatten


def _record(message: str, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("monitor.test", logging.INFO, __file__, 1, message, None, None)
    record.fields = fields
    return record


def test_json_lines_carry_the_fields_nested() -> None:
    line = JsonFormatter().format(_record("job latency success", job="latency",
                                          targets={"router": {"avg_ms": 1.5}}))
    entry = json.loads(line)
    assert entry["msg"] == "job latency success"
    assert entry["level"] == "info"
    assert entry["job"] == "latency"
    assert entry["targets"] == {"router": {"avg_ms": 1.5}}
    assert entry["ts"].endswith("Z")


def test_text_lines_flatten_the_fields() -> None:
    line = TextFormatter().format(_record("done", job="latency", targets={"v6": {"loss": 0.2}}))
    assert line.endswith("done job=latency targets.v6.loss=0.2")


def test_flatten() -> None:
    assert flatten({"a": 1, "b": {"c": {"d": None}, "e": [1]}}) == {
        "a": 1, "b.c.d": None, "b.e": [1]}


def test_event_passes_fields() -> None:
    logger = logging.getLogger("monitor.test.event")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    event(logger, logging.WARNING, "internet down", targets=["a"])
    assert records[0].getMessage() == "internet down"
    assert records[0].fields == {"targets": ["a"]}  # type: ignore[attr-defined]
