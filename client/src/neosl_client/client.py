"""``Client``: a typed method for every tenant route of the API.

    from neosl_client import Client

    with Client("http://127.0.0.1:8000", api_key="nsl_…") as nsl:
        fn = nsl.functions.deploy("hello", open("hello.js").read())
        done = nsl.functions.invoke(fn["id"], {"name": "Neo"}, wait=10)

Lists are iterators that fetch pages as they go. Errors are ``neosl_client.errors.ApiError``
(by status: ``NotFound``, ``ValidationError``...) carrying the API's code and details.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast, overload
from urllib.parse import quote

import httpx

from neosl_client import models
from neosl_client.http import DEFAULT_RETRIES, DEFAULT_TIMEOUT, Http, new_idempotency_key, route

if TYPE_CHECKING:
    from neosl_client.wallet import WalletKey

# Header of a webhook delivery's signature.
SIGNATURE_HEADER = "X-NSL-Signature"
# The most ?wait the API allows, seconds.
MAX_WAIT = 30.0
_UNSET: Any = object()


def _body(**fields: Any) -> dict[str, Any]:
    """The fields given (those left ``_UNSET`` are not sent)."""
    return {k: v for k, v in fields.items() if v is not _UNSET}


class _Resource:
    def __init__(self, http: Http) -> None:
        self._http = http


class Auth(_Resource):
    @route("POST", "/v1/auth/register")
    def register(self, username: str, email: str, password: str) -> models.Registered:
        """Create a tenant; answers its first API key (shown once)."""
        return cast(
            models.Registered,
            self._http.json(
                "POST",
                "/v1/auth/register",
                json={"username": username, "email": email, "password": password},
                authenticated=False,
            ),
        )

    @route("POST", "/v1/auth/login")
    def login(
        self, password: str, *, username: str | None = None, email: str | None = None
    ) -> models.Token:
        """A login token (``nslt_…``) for a username or email and password."""
        body: dict[str, Any] = {"password": password}
        if username is not None:
            body["username"] = username
        if email is not None:
            body["email"] = email
        return cast(
            models.Token,
            self._http.json("POST", "/v1/auth/login", json=body, authenticated=False),
        )

    @route("GET", "/v1/me")
    def me(self) -> models.User:
        return cast(models.User, self._http.json("GET", "/v1/me"))

    @route("POST", "/v1/me/api-key")
    def rotate_api_key(self) -> models.ApiKey:
        """A new API key; the old one stops working at once (this client switches to the
        new one)."""
        answer = cast(models.ApiKey, self._http.json("POST", "/v1/me/api-key"))
        self._http.token = answer["api_key"]
        return answer


class Health(_Resource):
    @route("GET", "/healthz")
    def health(self) -> models.Health:
        return cast(models.Health, self._http.json("GET", "/healthz", authenticated=False))

    @route("GET", "/readyz")
    def ready(self) -> models.Ready:
        """The API's dependencies, all answering.

        Raises:
            ServerError: 503, a dependency is unreachable (``details`` has the checks).
        """
        return cast(models.Ready, self._http.json("GET", "/readyz", authenticated=False))


class Functions(_Resource):
    @route("POST", "/v1/functions")
    def create(
        self,
        name: str,
        source_code: str,
        *,
        description: str | None = _UNSET,
        timeout: int = _UNSET,
        memory: int = _UNSET,
        secrets: Sequence[str] = _UNSET,
    ) -> models.Function:
        body = _body(
            name=name,
            source_code=source_code,
            description=description,
            timeout=timeout,
            memory=memory,
            secrets=list(secrets) if secrets is not _UNSET else _UNSET,
        )
        return cast(models.Function, self._http.json("POST", "/v1/functions", json=body))

    @route("GET", "/v1/functions")
    def list(self, *, page_size: int = 100) -> Iterator[models.Function]:
        return cast(
            Iterator[models.Function], self._http.pages("/v1/functions", page_size=page_size)
        )

    @route("GET", "/v1/functions/{function_id}")
    def get(self, function_id: int) -> models.Function:
        return cast(models.Function, self._http.json("GET", f"/v1/functions/{int(function_id)}"))

    def find(self, name: str) -> models.Function | None:
        """The function named ``name``, if the tenant has one."""
        return next((f for f in self.list() if f["name"] == name), None)

    @route("PATCH", "/v1/functions/{function_id}")
    def update(
        self,
        function_id: int,
        *,
        name: str = _UNSET,
        source_code: str = _UNSET,
        description: str | None = _UNSET,
        timeout: int = _UNSET,
        memory: int = _UNSET,
        secrets: Sequence[str] = _UNSET,
        status: Literal["active", "paused"] = _UNSET,
    ) -> models.Function:
        """Change what is given; new code makes a new version."""
        body = _body(
            name=name,
            source_code=source_code,
            description=description,
            timeout=timeout,
            memory=memory,
            secrets=list(secrets) if secrets is not _UNSET else _UNSET,
            status=status,
        )
        return cast(
            models.Function,
            self._http.json("PATCH", f"/v1/functions/{int(function_id)}", json=body),
        )

    def deploy(
        self,
        name: str,
        source_code: str,
        *,
        description: str | None = _UNSET,
        timeout: int = _UNSET,
        memory: int = _UNSET,
        secrets: Sequence[str] = _UNSET,
    ) -> models.Function:
        """Create the function ``name``, or update it (a new version) if it exists."""
        existing = self.find(name)
        if existing is None:
            return self.create(
                name,
                source_code,
                description=description,
                timeout=timeout,
                memory=memory,
                secrets=secrets,
            )
        return self.update(
            existing["id"],
            source_code=source_code,
            description=description,
            timeout=timeout,
            memory=memory,
            secrets=secrets,
        )

    @route("DELETE", "/v1/functions/{function_id}")
    def delete(self, function_id: int) -> None:
        self._http.json("DELETE", f"/v1/functions/{int(function_id)}")

    @route("GET", "/v1/functions/{function_id}/versions")
    def versions(
        self, function_id: int, *, page_size: int = 100
    ) -> Iterator[models.FunctionVersion]:
        return cast(
            Iterator[models.FunctionVersion],
            self._http.pages(f"/v1/functions/{int(function_id)}/versions", page_size=page_size),
        )

    @route("GET", "/v1/functions/{function_id}/versions/{version}")
    def version(self, function_id: int, version: int) -> models.FunctionVersion:
        return cast(
            models.FunctionVersion,
            self._http.json("GET", f"/v1/functions/{int(function_id)}/versions/{int(version)}"),
        )

    @overload
    def invoke(
        self, function_id: int, input: Any = None, *, wait: None = None
    ) -> models.Queued: ...

    @overload
    def invoke(
        self, function_id: int, input: Any = None, *, wait: float
    ) -> models.Execution | models.Queued: ...

    @route("POST", "/v1/functions/{function_id}/invoke")
    def invoke(
        self, function_id: int, input: Any = None, *, wait: float | None = None
    ) -> models.Execution | models.Queued:
        """Queue an execution (``Queued``); with ``wait`` (≤ 30 s) the finished
        ``Execution`` if it ends in time, else ``Queued``. Not retried once sent (a retry
        could run the function twice)."""
        if wait is not None and not 0 <= wait <= MAX_WAIT:
            raise ValueError(f"wait must be between 0 and {MAX_WAIT:g} seconds")
        return cast(
            models.Execution | models.Queued,
            self._http.json(
                "POST",
                f"/v1/functions/{int(function_id)}/invoke",
                params={"wait": wait} if wait else None,
                json={"input": input},
                timeout=self._http.timeout + (wait or 0),
            ),
        )


class Executions(_Resource):
    @route("GET", "/v1/executions")
    def list(
        self,
        *,
        function_id: int | None = None,
        status: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        page_size: int = 100,
    ) -> Iterator[models.Execution]:
        params = {"function_id": function_id, "status": status, "since": since, "until": until}
        return cast(
            Iterator[models.Execution],
            self._http.pages("/v1/executions", params, page_size=page_size),
        )

    @route("GET", "/v1/executions/{execution_id}")
    def get(self, execution_id: int) -> models.ExecutionDetail:
        return cast(
            models.ExecutionDetail, self._http.json("GET", f"/v1/executions/{int(execution_id)}")
        )

    @route("GET", "/v1/executions/{execution_id}/logs")
    def logs(self, execution_id: int, *, page_size: int = 100) -> Iterator[models.ExecutionLog]:
        return cast(
            Iterator[models.ExecutionLog],
            self._http.pages(f"/v1/executions/{int(execution_id)}/logs", page_size=page_size),
        )

    def wait(
        self, execution_id: int, *, timeout: float = 60.0, poll: float = 0.5
    ) -> models.ExecutionDetail:
        """The execution once it has ended (polled every ``poll`` s).

        Raises:
            TimeoutError: it had not ended after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            execution = self.get(execution_id)
            if execution["status"] not in ("queued", "running"):
                return execution
            if time.monotonic() >= deadline:
                raise TimeoutError(f"execution {execution_id} is still {execution['status']}")
            time.sleep(poll)


class Secrets(_Resource):
    @route("PUT", "/v1/secrets/{name}")
    def set(self, name: str, value: str) -> models.Secret:
        """Create or replace a secret (its value is never shown again)."""
        return cast(
            models.Secret,
            self._http.json("PUT", f"/v1/secrets/{_segment(name)}", json={"value": value}),
        )

    @route("GET", "/v1/secrets/{name}")
    def get(self, name: str) -> models.Secret:
        return cast(models.Secret, self._http.json("GET", f"/v1/secrets/{_segment(name)}"))

    @route("DELETE", "/v1/secrets/{name}")
    def delete(self, name: str) -> None:
        self._http.json("DELETE", f"/v1/secrets/{_segment(name)}")

    @route("GET", "/v1/secrets")
    def list(self, *, page_size: int = 100) -> Iterator[models.Secret]:
        return cast(Iterator[models.Secret], self._http.pages("/v1/secrets", page_size=page_size))


class Triggers(_Resource):
    @route("POST", "/v1/triggers")
    def create(
        self,
        name: str,
        function_id: int,
        trigger_type: Literal["cron", "price", "blockchain", "webhook"],
        trigger_config: Mapping[str, Any] | None = None,
        *,
        description: str | None = _UNSET,
    ) -> models.TriggerCreated:
        """A webhook trigger's answer carries its signing secret, shown once."""
        body = _body(
            name=name,
            function_id=function_id,
            trigger_type=trigger_type,
            trigger_config=dict(trigger_config or {}),
            description=description,
        )
        return cast(models.TriggerCreated, self._http.json("POST", "/v1/triggers", json=body))

    @route("GET", "/v1/triggers")
    def list(
        self,
        *,
        type: str | None = None,
        status: str | None = None,
        function_id: int | None = None,
        page_size: int = 100,
    ) -> Iterator[models.Trigger]:
        params = {"type": type, "status": status, "function_id": function_id}
        return cast(
            Iterator[models.Trigger], self._http.pages("/v1/triggers", params, page_size=page_size)
        )

    @route("GET", "/v1/triggers/{trigger_id}")
    def get(self, trigger_id: int) -> models.Trigger:
        return cast(models.Trigger, self._http.json("GET", f"/v1/triggers/{int(trigger_id)}"))

    @route("PATCH", "/v1/triggers/{trigger_id}")
    def update(
        self,
        trigger_id: int,
        *,
        name: str = _UNSET,
        function_id: int = _UNSET,
        trigger_config: Mapping[str, Any] = _UNSET,
        description: str | None = _UNSET,
    ) -> models.Trigger:
        body = _body(
            name=name,
            function_id=function_id,
            trigger_config=dict(trigger_config) if trigger_config is not _UNSET else _UNSET,
            description=description,
        )
        return cast(
            models.Trigger, self._http.json("PATCH", f"/v1/triggers/{int(trigger_id)}", json=body)
        )

    @route("DELETE", "/v1/triggers/{trigger_id}")
    def delete(self, trigger_id: int) -> None:
        self._http.json("DELETE", f"/v1/triggers/{int(trigger_id)}")

    @route("POST", "/v1/triggers/{trigger_id}/pause")
    def pause(self, trigger_id: int) -> models.Trigger:
        return cast(
            models.Trigger, self._http.json("POST", f"/v1/triggers/{int(trigger_id)}/pause")
        )

    @route("POST", "/v1/triggers/{trigger_id}/resume")
    def resume(self, trigger_id: int) -> models.Trigger:
        return cast(
            models.Trigger, self._http.json("POST", f"/v1/triggers/{int(trigger_id)}/resume")
        )

    @route("POST", "/v1/triggers/{trigger_id}/rotate-secret")
    def rotate_secret(self, trigger_id: int) -> models.TriggerCreated:
        return cast(
            models.TriggerCreated,
            self._http.json("POST", f"/v1/triggers/{int(trigger_id)}/rotate-secret"),
        )

    @route("POST", "/v1/triggers/{trigger_id}/fire")
    def fire(
        self, trigger_id: int, input: Any = None, *, idempotency_key: str | None = None
    ) -> models.TriggerEvent:
        """Fire the trigger now; retried safely with one ``Idempotency-Key``."""
        return cast(
            models.TriggerEvent,
            self._http.json(
                "POST",
                f"/v1/triggers/{int(trigger_id)}/fire",
                json={"input": input},
                idempotency_key=idempotency_key or new_idempotency_key(),
            ),
        )

    @route("GET", "/v1/triggers/{trigger_id}/events")
    def events(
        self, trigger_id: int, *, status: str | None = None, page_size: int = 100
    ) -> Iterator[models.TriggerEvent]:
        return cast(
            Iterator[models.TriggerEvent],
            self._http.pages(
                f"/v1/triggers/{int(trigger_id)}/events", {"status": status}, page_size=page_size
            ),
        )


def sign_delivery(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-NSL-Signature`` of a webhook delivery: ``t=<unix s>,v1=<hex HMAC-SHA256 of
    "<t>.<body>">`` with the trigger's secret (valid within 300 s, once)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class Hooks(_Resource):
    @route("POST", "/v1/hooks/{trigger_id}")
    def deliver(self, trigger_id: int, payload: Any, secret: str) -> models.HookAccepted:
        """Deliver ``payload`` (JSON) to a webhook trigger, signed with its secret. Not
        retried once sent (a signature is good once)."""
        body = json.dumps(payload).encode()
        return cast(
            models.HookAccepted,
            self._http.json(
                "POST",
                f"/v1/hooks/{int(trigger_id)}",
                content=body,
                headers={
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: sign_delivery(secret, body),
                },
                authenticated=False,
            ),
        )


class PriceFeeds(_Resource):
    @route("GET", "/v1/price-sources")
    def sources(self, pair: str | None = None, *, usdt_as_usd: bool = True) -> list[models.Source]:
        """The price sources the service knows; with ``pair``, those that price it, each with
        the market it reads (USDT markets for a USD pair only with ``usdt_as_usd``)."""
        params = {"pair": pair, "usdt_as_usd": str(usdt_as_usd).lower()} if pair else None
        answer = self._http.json("GET", "/v1/price-sources", params=params)
        items = answer["items"] if isinstance(answer, dict) else answer
        return cast(list[models.Source], items)

    @route("POST", "/v1/price-feeds")
    def create(
        self,
        asset_pair: str,
        sources: Sequence[str | Mapping[str, Any]],
        frequency: int,
        *,
        aggregation: str = _UNSET,
        deviation: str | float = _UNSET,
        heartbeat: int = _UNSET,
        min_sources: int = _UNSET,
        target: Mapping[str, Any] | None = _UNSET,
        usdt_as_usd: bool = _UNSET,
    ) -> models.Feed:
        """``sources``: names (``"binance"``) or source objects (a generic
        ``{name, url, json_path, headers}``). ``usdt_as_usd``: a USD pair may read a
        source's USDT market where it has no USD one."""
        body = _body(
            asset_pair=asset_pair,
            sources=[{"name": s} if isinstance(s, str) else dict(s) for s in sources],
            frequency=frequency,
            aggregation=aggregation,
            deviation=str(deviation) if deviation is not _UNSET else _UNSET,
            heartbeat=heartbeat,
            min_sources=min_sources,
            target=target,
            usdt_as_usd=usdt_as_usd,
        )
        return cast(models.Feed, self._http.json("POST", "/v1/price-feeds", json=body))

    @route("GET", "/v1/price-feeds")
    def list(self, *, asset_pair: str | None = None, page_size: int = 100) -> Iterator[models.Feed]:
        return cast(
            Iterator[models.Feed],
            self._http.pages("/v1/price-feeds", {"asset_pair": asset_pair}, page_size=page_size),
        )

    @route("GET", "/v1/price-feeds/{feed_id}")
    def get(self, feed_id: int) -> models.FeedDetail:
        return cast(models.FeedDetail, self._http.json("GET", f"/v1/price-feeds/{int(feed_id)}"))

    @route("PATCH", "/v1/price-feeds/{feed_id}")
    def update(self, feed_id: int, **fields: Any) -> models.Feed:
        """Change the fields given (those of ``create``)."""
        if "sources" in fields:
            fields["sources"] = [
                {"name": s} if isinstance(s, str) else dict(s) for s in fields["sources"]
            ]
        if "deviation" in fields:
            fields["deviation"] = str(fields["deviation"])
        return cast(
            models.Feed, self._http.json("PATCH", f"/v1/price-feeds/{int(feed_id)}", json=fields)
        )

    @route("DELETE", "/v1/price-feeds/{feed_id}")
    def delete(self, feed_id: int) -> None:
        self._http.json("DELETE", f"/v1/price-feeds/{int(feed_id)}")

    @route("POST", "/v1/price-feeds/{feed_id}/pause")
    def pause(self, feed_id: int) -> models.Feed:
        return cast(models.Feed, self._http.json("POST", f"/v1/price-feeds/{int(feed_id)}/pause"))

    @route("POST", "/v1/price-feeds/{feed_id}/resume")
    def resume(self, feed_id: int) -> models.Feed:
        return cast(models.Feed, self._http.json("POST", f"/v1/price-feeds/{int(feed_id)}/resume"))

    @route("GET", "/v1/price-feeds/{feed_id}/data")
    def data(
        self,
        feed_id: int,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        interval: str | None = None,
        page_size: int = 100,
    ) -> Iterator[models.PriceData | models.Ohlc]:
        """The feed's prices (with ``interval``, e.g. ``"1h"``: OHLC candles)."""
        params = {"from": start, "to": end, "interval": interval}
        return cast(
            Iterator[models.PriceData | models.Ohlc],
            self._http.pages(f"/v1/price-feeds/{int(feed_id)}/data", params, page_size=page_size),
        )

    @route("GET", "/v1/price-feeds/{feed_id}/rounds")
    def rounds(self, feed_id: int, *, page_size: int = 100) -> Iterator[models.Round]:
        return cast(
            Iterator[models.Round],
            self._http.pages(f"/v1/price-feeds/{int(feed_id)}/rounds", page_size=page_size),
        )

    @route("GET", "/v1/price-feeds/{feed_id}/report")
    def report(self, feed_id: int) -> models.Report:
        """The latest round as a signed report, for a contract to verify on chain (a public
        feed's also without a key; a read with a key is charged)."""
        return cast(
            models.Report,
            self._http.json("GET", f"/v1/price-feeds/{int(feed_id)}/report"),
        )

    @route("GET", "/v1/price-feeds/{feed_id}/latest")
    def latest(self, feed_id: int) -> models.Latest:
        return cast(models.Latest, self._http.json("GET", f"/v1/price-feeds/{int(feed_id)}/latest"))


class Gas(_Resource):
    @route("GET", "/v1/gas/accounts/challenge")
    def challenge(self, address: str) -> models.Challenge:
        """The text to sign with ``address``'s key to prove it is the tenant's."""
        return cast(
            models.Challenge,
            self._http.json("GET", "/v1/gas/accounts/challenge", params={"address": address}),
        )

    @route("POST", "/v1/gas/accounts")
    def add_account(
        self, address: str, public_key: str, signature: str, salt: str | None = None
    ) -> models.GasAccount:
        """Register an address with a wallet's signature of its challenge."""
        body = _body(address=address, public_key=public_key, signature=signature)
        if salt is not None:
            body["salt"] = salt
        return cast(models.GasAccount, self._http.json("POST", "/v1/gas/accounts", json=body))

    def prove(self, key: WalletKey) -> models.GasAccount:
        """Ask for the challenge of ``key``'s address, sign it with the key and register the
        address (``neosl_client.wallet``: from a WIF or a NEP-6 wallet file)."""
        challenge = self.challenge(key.address)
        return self.add_account(
            key.address, key.public_key_hex, key.sign_message(challenge["message"])
        )

    @route("GET", "/v1/gas/accounts")
    def accounts(self, *, page_size: int = 100) -> Iterator[models.GasAccount]:
        return cast(
            Iterator[models.GasAccount], self._http.pages("/v1/gas/accounts", page_size=page_size)
        )

    @route("GET", "/v1/gas/accounts/{account_id}")
    def account(self, account_id: int) -> models.GasAccount:
        return cast(
            models.GasAccount, self._http.json("GET", f"/v1/gas/accounts/{int(account_id)}")
        )

    @route("DELETE", "/v1/gas/accounts/{account_id}")
    def delete_account(self, account_id: int) -> None:
        self._http.json("DELETE", f"/v1/gas/accounts/{int(account_id)}")

    @route("POST", "/v1/gas/accounts/{account_id}/default")
    def set_default(self, account_id: int) -> models.GasAccount:
        return cast(
            models.GasAccount,
            self._http.json("POST", f"/v1/gas/accounts/{int(account_id)}/default"),
        )

    @route("POST", "/v1/gas/accounts/{account_id}/withdraw")
    def withdraw(
        self, account_id: int, amount: str, *, idempotency_key: str | None = None
    ) -> models.Transaction:
        """Withdraw ``amount`` GAS (a decimal string, e.g. ``"1.5"``) to the account's
        address. Retried with one ``Idempotency-Key``: never two withdrawals for one call
        (pass your own key to make your own retries safe too)."""
        return cast(
            models.Transaction,
            self._http.json(
                "POST",
                f"/v1/gas/accounts/{int(account_id)}/withdraw",
                json={"amount": str(amount)},
                idempotency_key=idempotency_key or new_idempotency_key(),
            ),
        )

    @route("GET", "/v1/gas/deposit-address")
    def deposit_address(self) -> models.DepositAddress:
        return cast(models.DepositAddress, self._http.json("GET", "/v1/gas/deposit-address"))

    @route("GET", "/v1/gas/transactions")
    def transactions(
        self,
        *,
        account_id: int | None = None,
        type: str | None = None,
        status: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        page_size: int = 100,
    ) -> Iterator[models.Transaction]:
        params = {
            "account_id": account_id,
            "type": type,
            "status": status,
            "since": since,
            "until": until,
        }
        return cast(
            Iterator[models.Transaction],
            self._http.pages("/v1/gas/transactions", params, page_size=page_size),
        )

    @route("GET", "/v1/gas/transactions/{transaction_id}")
    def transaction(self, transaction_id: int) -> models.Transaction:
        return cast(
            models.Transaction,
            self._http.json("GET", f"/v1/gas/transactions/{int(transaction_id)}"),
        )


class Neo(_Resource):
    @route("GET", "/v1/neo/signer")
    def signer(self) -> models.Signer:
        """The tenant's relay signer: the account its on-chain actions are witnessed by."""
        return cast(models.Signer, self._http.json("GET", "/v1/neo/signer"))

    @route("POST", "/v1/neo/actions")
    def act(
        self,
        contract: str,
        method: str,
        args: Sequence[Any] = (),
        *,
        idempotency_key: str | None = None,
    ) -> models.Action:
        """Queue a contract call relayed on chain (fees held from the default account).
        Retried with one ``Idempotency-Key``: never two transactions for one call."""
        return cast(
            models.Action,
            self._http.json(
                "POST",
                "/v1/neo/actions",
                json={"contract": contract, "method": method, "args": list(args)},
                idempotency_key=idempotency_key or new_idempotency_key(),
            ),
        )

    @route("GET", "/v1/neo/actions")
    def actions(
        self,
        *,
        status: str | None = None,
        execution_id: int | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        page_size: int = 100,
    ) -> Iterator[models.Action]:
        params = {"status": status, "execution_id": execution_id, "since": since, "until": until}
        return cast(
            Iterator[models.Action],
            self._http.pages("/v1/neo/actions", params, page_size=page_size),
        )

    @route("GET", "/v1/neo/actions/{action_id}")
    def action(self, action_id: int) -> models.Action:
        return cast(models.Action, self._http.json("GET", f"/v1/neo/actions/{int(action_id)}"))


class Client:
    """The API at ``base_url`` (e.g. ``http://127.0.0.1:8000``) as the tenant whose API key
    (``nsl_…``) or login token (``nslt_…``) is ``api_key``; without one, only
    registration, login, health and webhook deliveries work. Every call has a timeout
    (``timeout`` seconds; ``invoke`` adds its wait)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = Http(base_url, api_key, timeout=timeout, retries=retries, transport=transport)
        self.auth = Auth(self.http)
        self.health = Health(self.http)
        self.functions = Functions(self.http)
        self.executions = Executions(self.http)
        self.secrets = Secrets(self.http)
        self.triggers = Triggers(self.http)
        self.hooks = Hooks(self.http)
        self.feeds = PriceFeeds(self.http)
        self.gas = Gas(self.http)
        self.neo = Neo(self.http)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


RESOURCES: tuple[type[_Resource], ...] = (
    Auth,
    Health,
    Functions,
    Executions,
    Secrets,
    Triggers,
    Hooks,
    PriceFeeds,
    Gas,
    Neo,
)


def routes() -> dict[tuple[str, str], str]:
    """Every API route the client calls (method, OpenAPI path) → its method's name."""
    found: dict[tuple[str, str], str] = {}
    for resource in RESOURCES:
        for name, member in vars(resource).items():
            marked = getattr(member, "__neosl_route__", None)
            if marked is not None:
                found[marked] = f"{resource.__name__}.{name}"
    return found


def _segment(value: str) -> str:
    return quote(str(value), safe="")
