"""Which events each Sigma rule matches, by pySigma's SQLite backend over the events'
original JSON: the independent side of the differential test of `demarc sigma import`.

usage: pysigma_matches.py SIGMA_DIR EVENTS.jsonl

EVENTS.jsonl is `demarc normalize --out X.jsonl` output: each line has `event_id` and
`raw`, the event's JSON as read. Each event is flattened into one row of a table
`logs`: a column per dotted path (`requestParameters.bucketName`), objects and arrays
also as their JSON text at their own path; GCP entries also get pySigma's
`gcp.audit.method_name`, and each path again under `data.`. Text compares without regard to case (COLLATE NOCASE), as
Sigma specifies. Prints {"rules": {demarc rule id: [event ids]}, "skipped": {id: why}}.
"""

import glob
import json
import os
import re
import sqlite3
import sys

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection


def rule_id(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")
    return "sigma-" + slug


def flatten(value, prefix, out):
    if isinstance(value, dict):
        if prefix:
            out[prefix] = json.dumps(value)
        for key, inner in value.items():
            flatten(inner, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(value, list):
        out[prefix] = json.dumps(value)
    elif isinstance(value, bool):
        out[prefix] = "true" if value else "false"
    elif value is None:
        pass
    else:
        out[prefix] = str(value)


def main():
    sigma_dir, events_path = sys.argv[1], sys.argv[2]
    rows = []
    with open(events_path) as f:
        for line in f:
            event = json.loads(line)
            raw = json.loads(event["raw"])
            flat = {}
            flatten(raw, "", flat)
            if "protoPayload" in raw:
                # pySigma's name for the method, and the `data.` that some exports
                # wrap entries in.
                if "methodName" in raw["protoPayload"]:
                    flat["gcp.audit.method_name"] = raw["protoPayload"]["methodName"]
                flat.update({f"data.{k}": v for k, v in list(flat.items())})
            rows.append((event["event_id"], flat))
    # SQLite column names ignore case: paths that differ only in case share a column
    # (the first value of an event wins).
    spelling = {}
    for _, flat in rows:
        for k in flat:
            spelling.setdefault(k.lower(), k)
    for i, (event_id, flat) in enumerate(rows):
        merged = {}
        for k, v in flat.items():
            merged.setdefault(spelling[k.lower()], v)
        rows[i] = (event_id, merged)
    columns = sorted(set(spelling.values()))
    db = sqlite3.connect(":memory:")
    db.create_function(
        "REGEXP", 2, lambda pattern, value: value is not None and re.search(pattern, value) is not None
    )
    quoted = ", ".join(f'"{c}" TEXT COLLATE NOCASE' for c in columns)
    db.execute(f'CREATE TABLE logs ("demarc_event_id" TEXT, {quoted})')
    for event_id, flat in rows:
        names = ", ".join(['"demarc_event_id"'] + [f'"{k}"' for k in flat])
        marks = ", ".join("?" * (len(flat) + 1))
        db.execute(f"INSERT INTO logs ({names}) VALUES ({marks})", [event_id, *flat.values()])

    backend = sqliteBackend()
    matches, skipped = {}, {}
    for path in sorted(glob.glob(os.path.join(sigma_dir, "**", "*.yml"), recursive=True)):
        rid = rule_id(path)
        try:
            queries = backend.convert(SigmaCollection.from_yaml(open(path).read()))
        except Exception as e:  # the backend cannot express the rule
            skipped[rid] = str(e)
            continue
        found = set()
        for query in queries:
            query = query.replace("SELECT *", 'SELECT "demarc_event_id"', 1)
            while True:
                try:
                    found.update(r[0] for r in db.execute(query))
                    break
                except sqlite3.OperationalError as e:
                    # A field no event has: an empty column of its own.
                    missing = re.match(r"no such column: (.+)", str(e))
                    if not missing:
                        raise
                    name = missing.group(1).strip('`"')
                    db.execute(f'ALTER TABLE logs ADD COLUMN "{name}" TEXT COLLATE NOCASE')
        matches[rid] = sorted(found)
    json.dump({"rules": matches, "skipped": skipped}, sys.stdout, indent=1, sort_keys=True)


main()
