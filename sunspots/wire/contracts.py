"""The published contract of every topic: a JSON Schema document per message, under schemas/.

Other teams consume these topics, and these documents are what they may rely on. They are
generated from the very structs that decode and encode the messages (sunspots.wire.schemas, through
`msgspec.json.schema`), so the contract cannot drift from the code; the dead-letter headers,
which are Kafka headers rather than JSON, are described by a small document assembled here.
The committed files are checked against the generated ones by a unit test.

    python -m sunspots.wire.contracts --write schemas/    # regenerate after changing a message
    python -m sunspots.wire.contracts --check schemas/    # exit 1 if a committed file is stale

Inputs (observations, classifier requests) may omit `schema_version` (read as 1), so their
documents do not require it; every output carries it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from sunspots.lifecycle import records
from sunspots.wire import schemas

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# file name -> (topic, message struct, is it an input)
MESSAGES: dict[str, tuple[str, type[msgspec.Struct], bool]] = {
    "observation.json": ("sunspots.observations", schemas.Observation, True),
    "forecast.json": ("sunspots.forecasts", schemas.Forecast, False),
    "evaluation.json": ("sunspots.evaluations", schemas.Evaluation, False),
    "state.json": ("sunspots.forecaster-state", schemas.SeriesSnapshot, False),
    "classifier-request.json": ("classifier.requests", schemas.ClassifierRequest, True),
    "classifier-prediction.json": ("classifier.predictions", schemas.ClassifierPrediction, False),
    "model-record.json": ("sunspots.models", records.ModelRecord, True),
}
DEAD_LETTER_HEADERS = "dead-letter-headers.json"


def message_document(topic: str, struct: type[msgspec.Struct], is_input: bool) -> dict[str, Any]:
    """The JSON Schema of `struct`, self-contained, as the value of `topic`."""
    generated = msgspec.json.schema(struct)
    defs: dict[str, Any] = generated["$defs"]
    root = defs.pop(struct.__name__)
    if is_input:
        root["required"] = [name for name in root["required"] if name != "schema_version"]
    document = {
        "$schema": DRAFT,
        "title": f"{topic} value",
        **{k: v for k, v in root.items() if k != "title"},
    }
    if defs:
        document["$defs"] = defs
    return _unwrap(document)


def _unwrap(node: Any) -> Any:
    """Descriptions come from docstrings: join their wrapped lines, keep paragraphs."""
    if isinstance(node, dict):
        return {
            k: "\n\n".join(" ".join(p.split("\n")) for p in v.split("\n\n"))
            if k == "description" and isinstance(v, str)
            else _unwrap(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_unwrap(v) for v in node]
    return node


def dead_letter_headers_document() -> dict[str, Any]:
    """The dead-letter headers' schema: Kafka headers rather than JSON, so described here by hand."""
    number = {"type": "string", "pattern": "^[0-9]+$"}
    return {
        "$schema": DRAFT,
        "title": "sunspots.dead-letter headers",
        "description": (
            "A dead letter keeps the rejected record's key and value bytes untouched (a record "
            f"of more than {schemas.MAX_KEPT_BYTES // 1024} KiB is kept cut, with its full sizes "
            "in two more headers); its Kafka headers, each UTF-8 text, say why and where it "
            "came from. Shown as an object of header name to header value."
        ),
        "type": "object",
        "properties": {
            "reason": {
                "enum": list(schemas.DEAD_LETTER_REASONS),
                "description": "why it was rejected",
            },
            "detail": {
                "type": "string",
                "maxLength": schemas.MAX_DETAIL_BYTES,
                "description": f"what was wrong, for people; at most {schemas.MAX_DETAIL_BYTES} bytes",
            },
            "source_topic": {"type": "string", "minLength": 1},
            "source_partition": {**number, "description": "decimal partition number"},
            "source_offset": {**number, "description": "decimal offset of the record"},
            "original_key_bytes": {
                **number,
                "description": "only on a record too large to keep whole: its key's size; the "
                f"dead letter keeps the first {schemas.MAX_KEY_BYTES} bytes",
            },
            "original_value_bytes": {
                **number,
                "description": "only on a record too large to keep whole: its value's size; "
                f"the dead letter keeps the first {schemas.MAX_MESSAGE_BYTES} bytes",
            },
        },
        "required": ["reason", "detail", "source_topic", "source_partition", "source_offset"],
        "additionalProperties": False,
    }


def documents() -> dict[str, dict[str, Any]]:
    """Every document, by file name."""
    out = {name: message_document(*spec) for name, spec in MESSAGES.items()}
    out[DEAD_LETTER_HEADERS] = dead_letter_headers_document()
    return out


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def stale(folder: Path) -> list[str]:
    """The files in `folder` that are missing or differ from the generated documents."""
    return [
        name
        for name, document in documents().items()
        if not (folder / name).is_file() or (folder / name).read_text() != render(document)
    ]


def main(argv: list[str] | None = None) -> int:
    """`python -m sunspots.wire.contracts --write|--check DIR`: write the schema documents, or exit
    1 when a committed one is stale."""
    parser = argparse.ArgumentParser(prog="python -m sunspots.wire.contracts", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", type=Path, metavar="DIR", help="write every document")
    action.add_argument("--check", type=Path, metavar="DIR", help="exit 1 if any is stale")
    args = parser.parse_args(argv)
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        for name, document in documents().items():
            (args.write / name).write_text(render(document))
        sys.stdout.write(f"wrote {len(documents())} documents to {args.write}\n")
        return 0
    behind = stale(args.check)
    for name in behind:
        sys.stdout.write(
            f"{args.check / name} is stale: python -m sunspots.wire.contracts --write\n"
        )
    return 1 if behind else 0


if __name__ == "__main__":
    sys.exit(main())
