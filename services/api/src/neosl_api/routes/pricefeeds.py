"""Price feeds and their history; the market-data sources they can read."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from neosl.models import PriceFeed, PriceRound
from neosl.pricefeeds import definitions
from neosl_api import auth, context
from neosl_api.blueprint import Blueprint
from neosl_api.pagination import Page
from neosl_api.schemas.common import PageArgsSchema, page_of
from neosl_api.schemas.pricefeeds import (
    FeedCreateSchema,
    FeedDetailSchema,
    FeedFilterSchema,
    FeedSchema,
    FeedUpdateSchema,
    LatestSchema,
    OhlcSchema,
    PriceDataArgsSchema,
    PriceDataSchema,
    ReportSchema,
    RoundSchema,
    SourceArgsSchema,
    SourceSchema,
)
from neosl_api.services import pricefeeds

blp = Blueprint("pricefeeds", __name__, url_prefix="/v1", description="Price feeds")


@blp.route("/price-sources", methods=["GET"])
@blp.arguments(SourceArgsSchema, location="query")
@blp.response(200, SourceSchema(many=True))
@blp.alt_response(422, description="`pair` is not BASE/QUOTE")
def list_sources(args: dict[str, Any]) -> list[dict[str, object]]:
    """The market-data sources, each with the status of its stored market list; with
    `?pair=BASE/QUOTE`, only the sources that price the pair, each with the market it reads
    and its symbol of it."""
    return pricefeeds.describe_sources(context.db(), args["pair"], args["usdt_as_usd"])


@blp.route("/price-feeds", methods=["POST"])
@blp.arguments(FeedCreateSchema)
@blp.response(201, FeedSchema)
@blp.alt_response(402, description="Your default gas account cannot pay for one round")
@blp.alt_response(409, description="You have NSL_FEEDS_PER_TENANT feeds already")
@blp.alt_response(422, description="Invalid fields; errors name the field")
def create_feed(body: dict[str, Any]) -> PriceFeed:
    """Create a feed; its first round is due at once. Each round is charged to you before
    its sources are asked (a fee per round plus one per source): your default gas account
    must cover one round."""
    return definitions.create_feed(
        context.db(), context.settings(), context.current_user().id, definitions.FeedSpec(**body)
    )


@blp.route("/price-feeds", methods=["GET"])
@blp.arguments(FeedFilterSchema, location="query")
@blp.response(200, page_of(FeedSchema))
def list_feeds(args: dict[str, Any]) -> Page[PriceFeed]:
    """Your feeds and the public ones, newest first."""
    return pricefeeds.list_feeds(
        context.db(), context.current_user().id, args["asset_pair"], args["limit"], args["cursor"]
    )


@blp.route("/price-feeds/<int:feed_id>", methods=["GET"])
@blp.response(200, FeedDetailSchema)
def get_feed(feed_id: int) -> dict[str, Any]:
    """One of your feeds, or a public one, with its publishing: the last round on chain,
    and the newest round due to publish with what came of it (why it was not published)."""
    return pricefeeds.feed_detail(context.db(), context.current_user().id, feed_id)


@blp.route("/price-feeds/<int:feed_id>", methods=["PATCH"])
@blp.arguments(FeedUpdateSchema)
@blp.response(200, FeedSchema)
@blp.alt_response(403, description="A public feed: only its operator changes it")
def update_feed(body: dict[str, Any], feed_id: int) -> PriceFeed:
    """Change a feed; all its fields are validated again together."""
    return pricefeeds.update_feed(
        context.db(), context.settings(), context.current_user().id, feed_id, body
    )


@blp.route("/price-feeds/<int:feed_id>", methods=["DELETE"])
@blp.response(204)
@blp.alt_response(403, description="A public feed: only its operator changes it")
def delete_feed(feed_id: int) -> None:
    """Delete a feed with its prices and rounds."""
    pricefeeds.delete_feed(context.db(), context.current_user().id, feed_id)


@blp.route("/price-feeds/<int:feed_id>/pause", methods=["POST"])
@blp.response(200, FeedSchema)
def pause_feed(feed_id: int) -> PriceFeed:
    """Stop running rounds until you resume the feed."""
    return pricefeeds.set_status(
        context.db(), context.settings(), context.current_user().id, feed_id, "paused"
    )


@blp.route("/price-feeds/<int:feed_id>/resume", methods=["POST"])
@blp.response(200, FeedSchema)
@blp.alt_response(402, description="Your default gas account cannot pay for one round")
def resume_feed(feed_id: int) -> PriceFeed:
    """Run rounds again; the next one is due at once. A feed paused because you could not
    pay a round resumes by itself once your default gas account covers one."""
    return pricefeeds.set_status(
        context.db(), context.settings(), context.current_user().id, feed_id, "active"
    )


@blp.route("/price-feeds/<int:feed_id>/data", methods=["GET"])
@blp.arguments(PriceDataArgsSchema, location="query")
# Both forms under one 200: the document keeps one answer per status code (a second 200
# would replace this one), so it names the two pages a client can get.
@blp.response(
    200,
    {"anyOf": [page_of(PriceDataSchema), page_of(OhlcSchema)]},
    description="A page of prices; with `interval`, a page of OHLC buckets",
)
def list_prices(args: dict[str, Any], feed_id: int) -> Response:
    """The feed's prices, newest first, between `from` and `to`; with `interval`
    (1m, 5m, 1h, 1d) OHLC buckets computed in the database instead, newest first: at most
    1,000, in one page (`next_cursor` is null; `limit` and `cursor` apply to prices only)."""
    session, user_id = context.db(), context.current_user().id
    if args["interval"] is not None:
        buckets = pricefeeds.ohlc(
            session, user_id, feed_id, args["interval"], args["since"], args["until"]
        )
        return context.json_response(page_of(OhlcSchema)().dump(Page(buckets, None)), 200)
    page = pricefeeds.list_prices(
        session, user_id, feed_id, args["since"], args["until"], args["limit"], args["cursor"]
    )
    return context.json_response(page_of(PriceDataSchema)().dump(page), 200)


@blp.route("/price-feeds/<int:feed_id>/rounds", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, page_of(RoundSchema))
def list_rounds(args: dict[str, Any], feed_id: int) -> Page[PriceRound]:
    """Every round, newest first: priced or failed with the reason, and what each source
    answered (value, latency, error or why it was rejected)."""
    return pricefeeds.list_rounds(
        context.db(), context.current_user().id, feed_id, args["limit"], args["cursor"]
    )


@blp.route("/price-feeds/<int:feed_id>/latest", methods=["GET"])
@blp.response(200, LatestSchema)
def latest(feed_id: int) -> dict[str, Any]:
    """The newest price, the newest round, and the last round published on chain (with
    its transaction)."""
    return pricefeeds.latest(context.db(), context.current_user().id, feed_id)


@blp.route("/price-feeds/<int:feed_id>/report", methods=["GET"])
@blp.response(200, ReportSchema)
@blp.alt_response(401, description="No key, and the feed is not public")
@blp.alt_response(402, description="Your default gas account cannot pay for the read")
@blp.alt_response(404, description="No such feed for you, or no signed round yet")
@blp.alt_response(429, description="Too many reads without a key from this address")
@blp.doc(security=[{}, {"bearerAuth": []}])
@auth.public
def report(feed_id: int) -> dict[str, Any]:
    """The latest round as a signed report, for a contract to verify on chain: your feeds'
    and the public ones' (those also without a key). A read with a key costs
    `NSL_PRICEFEED_REPORT_FEE`."""
    caller = auth.caller_if_any()
    return pricefeeds.signed_report(
        context.db(),
        context.settings(),
        context.redis(),
        caller.id if caller is not None else None,
        feed_id,
        request.remote_addr or "unknown",
    )
