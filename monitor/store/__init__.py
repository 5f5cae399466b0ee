"""Where calls, detector results and alert state live: the SQLite store, its schema, the
history of results, the group-commit writer.
"""
