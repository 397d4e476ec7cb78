"""The API's request and answer bodies, as typed dictionaries.

Written by ``python -m neosl_client._codegen`` from the API's OpenAPI document: do not edit.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class Action(TypedDict):
    args: Any
    block_index: NotRequired[int | None]
    charge_type: Literal["function", "pricefeed"]
    contract: str
    created_at: str
    execution_id: NotRequired[int | None]
    failure_reason: NotRequired[str | None]
    fee_charged: NotRequired[str | None]
    gas_consumed: NotRequired[str | None]
    id: int
    method: str
    network_fee: NotRequired[str | None]
    position: NotRequired[int | None]
    price_round_id: NotRequired[int | None]
    service_fee: NotRequired[str | None]
    settled_at: NotRequired[str | None]
    status: Literal["queued", "pending", "confirmed", "failed"]
    system_fee: NotRequired[str | None]
    tx_hash: NotRequired[str | None]
    vm_state: NotRequired[str | None]


class ActionCreate(TypedDict):
    args: NotRequired[list[Any]]
    contract: str
    method: str


class ActionPage(TypedDict):
    items: list[Action]
    next_cursor: str | None


class ApiKey(TypedDict):
    api_key: str


class Attempt(TypedDict):
    action: NotRequired[dict[str, Any] | PublicationAction | None]
    finished_at: NotRequired[str | None]
    id: int
    price: NotRequired[str | None]
    publication: NotRequired[Literal["not_due", "queued", "skipped", "unpaid"] | None]
    publication_reason: NotRequired[str | None]


class Challenge(TypedDict):
    address: str
    expires_at: str
    message: str


class DepositAddress(TypedDict):
    address: str
    note: str


class Error(TypedDict):
    error: ErrorBody


class ErrorBody(TypedDict):
    code: str
    details: NotRequired[dict[str, Any] | None]
    message: str


class Execution(TypedDict):
    charge_amount: NotRequired[str | None]
    charge_status: NotRequired[str | None]
    created_at: str
    duration: NotRequired[int | None]
    end_time: NotRequired[str | None]
    error: NotRequired[str | None]
    function_id: int
    id: int
    input: NotRequired[Any]
    result: NotRequired[Any]
    start_time: NotRequired[str | None]
    status: Literal["queued", "running", "succeeded", "failed", "timeout"]
    trigger: NotRequired[Any]
    version: int


class ExecutionDetail(TypedDict):
    actions: list[Action]
    charge_amount: NotRequired[str | None]
    charge_status: NotRequired[str | None]
    created_at: str
    duration: NotRequired[int | None]
    end_time: NotRequired[str | None]
    error: NotRequired[str | None]
    function_id: int
    id: int
    input: NotRequired[Any]
    result: NotRequired[Any]
    start_time: NotRequired[str | None]
    status: Literal["queued", "running", "succeeded", "failed", "timeout"]
    trigger: NotRequired[Any]
    version: int


class ExecutionLog(TypedDict):
    id: int
    level: str
    message: str
    timestamp: str


class ExecutionLogPage(TypedDict):
    items: list[ExecutionLog]
    next_cursor: str | None


class ExecutionPage(TypedDict):
    items: list[Execution]
    next_cursor: str | None


class Feed(TypedDict):
    aggregation: str
    asset_pair: str
    created_at: str
    deviation: str
    frequency: int
    heartbeat: int
    id: int
    min_sources: int
    next_round_at: NotRequired[str | None]
    paused_reason: NotRequired[Literal["owner", "insufficient_funds"] | None]
    public: bool
    sources: list[dict[str, Any]]
    status: Literal["active", "paused"]
    target: NotRequired[dict[str, Any] | None]
    updated_at: str
    usdt_as_usd: bool


class FeedCreate(TypedDict):
    aggregation: NotRequired[str]
    asset_pair: str
    deviation: NotRequired[float | None]
    frequency: int
    heartbeat: NotRequired[int | None]
    min_sources: NotRequired[int]
    sources: Any
    target: NotRequired[Any]
    usdt_as_usd: NotRequired[bool]


class FeedDetail(TypedDict):
    aggregation: str
    asset_pair: str
    created_at: str
    deviation: str
    frequency: int
    heartbeat: int
    id: int
    min_sources: int
    next_round_at: NotRequired[str | None]
    paused_reason: NotRequired[Literal["owner", "insufficient_funds"] | None]
    public: bool
    publishing: Publishing
    sources: list[dict[str, Any]]
    status: Literal["active", "paused"]
    target: NotRequired[dict[str, Any] | None]
    updated_at: str
    usdt_as_usd: bool


class FeedPage(TypedDict):
    items: list[Feed]
    next_cursor: str | None


class FeedUpdate(TypedDict):
    aggregation: NotRequired[Literal["median", "mean", "trimmed_mean", "weighted"]]
    asset_pair: NotRequired[str]
    deviation: NotRequired[float]
    frequency: NotRequired[int]
    heartbeat: NotRequired[int | None]
    min_sources: NotRequired[int]
    sources: NotRequired[Any]
    target: NotRequired[Any]
    usdt_as_usd: NotRequired[bool]


class Follower(TypedDict):
    chain_height: NotRequired[int | None]
    lag_blocks: NotRequired[int | None]
    next_block: int
    updated_seconds_ago: float


class Function(TypedDict):
    created_at: str
    description: NotRequired[str | None]
    execution_count: int
    id: int
    last_execution: NotRequired[str | None]
    memory: int
    name: str
    secrets: list[str]
    source_code: str
    status: Literal["active", "paused"]
    timeout: int
    updated_at: str
    version: int


class FunctionCreate(TypedDict):
    description: NotRequired[str | None]
    memory: NotRequired[int]
    name: str
    secrets: NotRequired[list[str]]
    source_code: str
    timeout: NotRequired[int]


class FunctionPage(TypedDict):
    items: list[Function]
    next_cursor: str | None


class FunctionUpdate(TypedDict):
    description: NotRequired[str | None]
    memory: NotRequired[int]
    name: NotRequired[str]
    secrets: NotRequired[list[str]]
    source_code: NotRequired[str]
    status: NotRequired[Literal["active", "paused"]]
    timeout: NotRequired[int]


class FunctionVersion(TypedDict):
    created_at: str
    memory: int
    secrets: list[str]
    source_code: str
    timeout: int
    version: int


class FunctionVersionPage(TypedDict):
    items: list[FunctionVersion]
    next_cursor: str | None


class GasAccount(TypedDict):
    address: str
    balance: str
    created_at: str
    id: int
    is_default: bool
    verified: bool


class GasAccountCreate(TypedDict):
    address: str
    public_key: str
    salt: NotRequired[str | None]
    signature: str


class GasAccountPage(TypedDict):
    items: list[GasAccount]
    next_cursor: str | None


class Health(TypedDict):
    status: str


class HookAccepted(TypedDict):
    event_id: int
    execution_id: NotRequired[int | None]
    status: str


class Invoke(TypedDict):
    input: NotRequired[Any]


class Latest(TypedDict):
    feed_id: int
    price: NotRequired[dict[str, Any] | PriceData | None]
    published: NotRequired[dict[str, Any] | Published | None]
    round: NotRequired[dict[str, Any] | Round | None]


class Login(TypedDict):
    email: NotRequired[str]
    password: str
    username: NotRequired[str]


class Ohlc(TypedDict):
    close: str
    high: str
    low: str
    open: str
    rounds: int
    start: str


class OhlcPage(TypedDict):
    items: list[Ohlc]
    next_cursor: str | None


class PaginationMetadata(TypedDict):
    first_page: NotRequired[int]
    last_page: NotRequired[int]
    next_page: NotRequired[int]
    page: NotRequired[int]
    previous_page: NotRequired[int]
    total: NotRequired[int]
    total_pages: NotRequired[int]


class PriceData(TypedDict):
    id: int
    price: str
    source_data: NotRequired[Any]
    sources_used: int
    timestamp: str


class PriceDataPage(TypedDict):
    items: list[PriceData]
    next_cursor: str | None


class PublicationAction(TypedDict):
    block_index: NotRequired[int | None]
    contract: str
    failure_reason: NotRequired[str | None]
    fee_charged: NotRequired[float | None]
    id: int
    method: str
    status: Literal["queued", "pending", "confirmed", "failed"]
    tx_hash: NotRequired[str | None]


class Published(TypedDict):
    block_index: NotRequired[int | None]
    contract: str
    key: NotRequired[str | None]
    price: str
    round_id: int
    timestamp: str
    tx_hash: str


class Publishing(TypedDict):
    last_attempt: NotRequired[Attempt | dict[str, Any] | None]
    last_published: NotRequired[dict[str, Any] | Published | None]


class Queued(TypedDict):
    execution_id: int
    status: str


class Ready(TypedDict):
    chain_follower: Follower | dict[str, Any] | None
    checks: dict[str, str]
    status: str


class Register(TypedDict):
    email: str
    password: str
    username: str


class Registered(TypedDict):
    api_key: str
    user: User


class Report(TypedDict):
    decimals: int
    feed_id: int
    key_id: str
    pair: str
    price: str
    public_key: str
    report: str
    round_id: int
    signature: str
    sources_used: int
    timestamp: int


class Round(TypedDict):
    action: NotRequired[dict[str, Any] | PublicationAction | None]
    finished_at: NotRequired[str | None]
    id: int
    price: NotRequired[str | None]
    publication: NotRequired[Literal["not_due", "queued", "skipped", "unpaid"] | None]
    publication_reason: NotRequired[str | None]
    reason: NotRequired[str | None]
    scheduled_at: str
    source_data: Any
    sources_used: NotRequired[int | None]
    started_at: str
    status: Literal["queued", "running", "priced", "failed"]


class RoundPage(TypedDict):
    items: list[Round]
    next_cursor: str | None


class Secret(TypedDict):
    created_at: str
    name: str
    updated_at: str
    version: int


class SecretPage(TypedDict):
    items: list[Secret]
    next_cursor: str | None


class SecretValue(TypedDict):
    value: str


class Signer(TypedDict):
    address: str
    created_at: str
    public_key: str
    script_hash: str


class Source(TypedDict):
    bases: list[str]
    listed_at: str | None
    listing_error: str | None
    market: str | None
    markets: int | None
    name: str
    quotes: dict[str, str]
    symbol: str | None
    title: str


class Token(TypedDict):
    access_token: str
    expires_at: str
    expires_in: int
    token_type: str


class Transaction(TypedDict):
    account_id: int
    amount: str
    block_index: NotRequired[int | None]
    created_at: str
    failure_reason: NotRequired[str | None]
    id: int
    reference: NotRequired[str | None]
    status: Literal["pending", "confirmed", "failed"]
    tx_hash: NotRequired[str | None]
    type: Literal["deposit", "withdraw", "function", "pricefeed", "refund"]
    updated_at: str


class TransactionPage(TypedDict):
    items: list[Transaction]
    next_cursor: str | None


class Trigger(TypedDict):
    created_at: str
    description: NotRequired[str | None]
    feed_id: NotRequired[int | None]
    function_id: int
    id: int
    last_event: NotRequired[TriggerEvent | dict[str, Any] | None]
    name: str
    next_fire_at: NotRequired[str | None]
    price_state: NotRequired[Any]
    status: Literal["active", "paused"]
    trigger_config: dict[str, Any]
    trigger_type: Literal["cron", "price", "blockchain", "webhook"]
    updated_at: str
    webhook_url: NotRequired[str | None]


class TriggerCreate(TypedDict):
    description: NotRequired[str | None]
    function_id: int
    name: str
    trigger_config: NotRequired[Any]
    trigger_type: Literal["cron", "price", "blockchain", "webhook"]


class TriggerCreated(TypedDict):
    created_at: str
    description: NotRequired[str | None]
    feed_id: NotRequired[int | None]
    function_id: int
    id: int
    last_event: NotRequired[TriggerEvent | dict[str, Any] | None]
    name: str
    next_fire_at: NotRequired[str | None]
    price_state: NotRequired[Any]
    status: Literal["active", "paused"]
    trigger_config: dict[str, Any]
    trigger_type: Literal["cron", "price", "blockchain", "webhook"]
    updated_at: str
    webhook_secret: NotRequired[str | None]
    webhook_url: NotRequired[str | None]


class TriggerEvent(TypedDict):
    cause: dict[str, Any]
    cause_key: str
    execution_id: NotRequired[int | None]
    id: int
    reason: NotRequired[str | None]
    status: Literal["fired", "skipped", "failed"]
    timestamp: str
    trigger_id: int


class TriggerEventPage(TypedDict):
    items: list[TriggerEvent]
    next_cursor: str | None


class TriggerPage(TypedDict):
    items: list[Trigger]
    next_cursor: str | None


class TriggerUpdate(TypedDict):
    description: NotRequired[str | None]
    function_id: NotRequired[int]
    name: NotRequired[str]
    trigger_config: NotRequired[Any]


class User(TypedDict):
    created_at: str
    email: str
    id: int
    is_active: bool
    username: str


class Withdraw(TypedDict):
    amount: str
