"""The Neo N3 Service Layer's tenant SDK.

    from neosl_client import Client

    with Client("http://127.0.0.1:8000", api_key="nsl_…") as nsl:
        print(nsl.auth.me())

``Client`` has a typed method for every tenant route (``neosl_client.models`` are the API's
bodies); ``neosl_client.errors`` what it raises; ``neosl_client.wallet`` signs ownership
proofs from a WIF or a NEP-6 wallet file.
"""

from neosl_client.client import Client, routes, sign_delivery
from neosl_client.errors import ApiError, NeoslError, TransportError

__all__ = ["ApiError", "Client", "NeoslError", "TransportError", "routes", "sign_delivery"]
