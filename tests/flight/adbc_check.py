"""Drives `demarc serve --flight-sql` with the ADBC Flight SQL driver, as a Python
user would, and prints what it saw as one JSON object for the Rust test to check.

    python adbc_check.py grpc://127.0.0.1:PORT TOKEN
"""

import json
import sys

import adbc_driver_flightsql.dbapi as flight_sql
from adbc_driver_flightsql import DatabaseOptions
from adbc_driver_manager import Error


def connect(uri, token):
    kwargs = {}
    if token is not None:
        kwargs[DatabaseOptions.AUTHORIZATION_HEADER.value] = "Bearer " + token
    return flight_sql.connect(uri, db_kwargs=kwargs)


def failure(uri, token, sql):
    """The error a query gets, as (class name, message)."""
    try:
        with connect(uri, token) as conn, conn.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
    except Error as e:
        return [type(e).__name__, str(e)]
    return None


def main():
    uri, token = sys.argv[1], sys.argv[2]
    seen = {}
    with connect(uri, token) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM events")
            seen["count"] = cur.fetchone()[0]
            cur.execute("SELECT max(time) AS latest FROM events")
            seen["max_time"] = cur.fetchone()[0].isoformat()
            cur.execute(
                "SELECT count(*) AS n FROM events WHERE provider = ? AND operation = ?",
                ("aws", "StopLogging"),
            )
            seen["prepared"] = cur.fetchone()[0]
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        seen["objects"] = sorted(
            f'{catalog["catalog_name"]}.{schema["db_schema_name"]}.{table["table_name"]}'
            for catalog in objects
            for schema in catalog["catalog_db_schemas"] or []
            for table in schema["db_schema_tables"] or []
        )
        seen["events_columns"] = conn.adbc_get_table_schema("events").names
    seen["no_token"] = failure(uri, None, "SELECT 1")
    seen["bad_token"] = failure(uri, "not-the-token-at-all", "SELECT 1")
    seen["drop"] = failure(uri, token, "DROP TABLE events")
    seen["copy"] = failure(uri, token, "COPY (SELECT 1) TO '/tmp/demarc-adbc-never.csv'")
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
