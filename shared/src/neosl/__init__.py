"""Neo N3 Service Layer: what every service shares.

Configuration, database engine and models, the Celery app factory and the task
contracts (names and payloads) through which the services talk to one another.
"""
