"""Flower's configuration file (``celery flower --conf=…``), for the compose file and the
Kubernetes manifests alike: Flower starts only if every login in FLOWER_BASIC_AUTH is
user:password.

Flower lets in whoever sends the credentials of one of its logins, and an empty login (the
variable set but empty, or a stray comma as in ``admin:pw,``) is matched by empty
credentials (``Authorization: Basic =``): Flower open to anyone, with an API that revokes
tasks and shuts workers down. Flower runs this file after reading its environment; a name
defined here that is one of its options would set it, hence the leading underscores.
"""

import sys as _sys

from tornado.options import options as _options


def _refuse_empty_logins() -> None:
    logins = _options.basic_auth or []
    if not logins or not all(
        user and password for user, _, password in (login.partition(":") for login in logins)
    ):
        _sys.exit(
            "FLOWER_BASIC_AUTH must be user:password (several separated by commas), none "
            "empty: Flower lets anyone in with an empty one"
        )


_refuse_empty_logins()
