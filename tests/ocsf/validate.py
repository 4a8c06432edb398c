#!/usr/bin/env python3
"""Checks JSON files against the OCSF Detection Finding class (2004), offline.

usage: validate.py VERSION FILE...   (exit 0 when every file is valid)

The class schema comes from the OCSF schema bundled in `ocsf-json-schema`; type_uid's
rule (class_uid * 100 + activity_id), which JSON Schema cannot express, is checked here.
"""
import json
import sys

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema


def main(version, paths):
    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))
    validator = Draft202012Validator(schema.get_class_schema(class_name="detection_finding", profiles=[]))
    failed = False
    for path in paths:
        with open(path, encoding="utf-8") as f:
            event = json.load(f)
        problems = [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(event)
        ]
        activity = event.get("activity_id")
        if isinstance(activity, int) and event.get("type_uid") != 200400 + activity:
            problems.append(f"type_uid: expected {200400 + activity}, got {event.get('type_uid')!r}")
        print(f"{path}: {'valid' if not problems else 'INVALID'}")
        for p in problems:
            print(f"  - {p}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
