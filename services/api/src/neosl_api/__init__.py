"""The REST API of the Neo N3 Service Layer (Flask + flask-smorest)."""
