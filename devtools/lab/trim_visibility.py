"""Drop the dev server's visibility indexes that orderflow does not query.

Usage: trim_visibility.py DB_FILE [INDEX_TO_KEEP...] < namespace-describe.json

The indexes to keep are named as arguments (the lab passes the lines
of temporal-config/visibility-indexes.txt; with none it refuses). The
namespace description (temporal operator namespace describe -o json) names
the columns its custom search attributes map to, whose indexes are kept, and
created again if an earlier trim dropped one before its attribute existed.
The server may be running: SQLite re-prepares its statements after the change.
"""
import json
import re
import sqlite3
import sys
import urllib.parse

INDEXED_KINDS = ("Bool", "Datetime", "Double", "Int", "Keyword")


def index_of(field):
    m = re.fullmatch(r"([A-Za-z]+?)(\d+)", field)
    if not m or m.group(1) not in INDEXED_KINDS:
        return None
    return "by_%s_%s" % (m.group(1).lower(), m.group(2))


def main():
    db_file, keep = sys.argv[1], set(sys.argv[2:])
    if not keep:
        raise ValueError("no index to keep is named: refusing to drop them all")
    aliases = json.load(sys.stdin).get("config", {}).get("customSearchAttributeAliases") or {}
    mapped = {}
    for field in aliases:
        name = index_of(field)
        if name:
            mapped[name] = field
    keep |= set(mapped)

    # mode=rw: never create a database the server did not.
    con = sqlite3.connect("file:%s?mode=rw" % urllib.parse.quote(db_file), uri=True, timeout=30)
    have = {row[0] for row in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'executions_visibility' AND sql IS NOT NULL")}
    dropped = sorted(have - keep)
    for name in dropped:
        con.execute('DROP INDEX "%s"' % name)
    created = sorted(set(mapped) - have)
    for name in created:
        con.execute(
            'CREATE INDEX "%s" ON executions_visibility (namespace_id, "%s", '
            "(COALESCE(close_time, '9999-12-31 23:59:59+00:00')) DESC, start_time DESC, run_id)" % (name, mapped[name]))
    con.commit()
    con.close()
    print("visibility indexes: %d kept, %d dropped, %d created" % (len(have) - len(dropped) + len(created), len(dropped), len(created)))


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, sqlite3.Error) as e:
        sys.exit("trim_visibility: %s" % e)
