// Brings a price feed's latest signed report to a PriceConsumer contract
// (contracts/price_consumer.py), which has the PriceFeed contract verify it in the same
// transaction: the price reaches the chain when it is used, paid by whoever uses it.
// Input: {"api": "https://…", "feed": 1, "consumer": "0x…"}. A public feed's report needs no
// key; for your own feed, store your API key as the secret NSL_API_KEY and grant it.
// The consumer is deployed for one feed, e.g.
//   neosl devnet deploy price_consumer --data '[{"$neo": "Hash160", "value": "0x<PriceFeed>"}, 1]'
/**
 * @param {{ api: string, feed: number, consumer: string }} input
 * @param {NeoSL.Context} ctx
 */
async function main(input, ctx) {
  const headers = ctx.secrets.NSL_API_KEY
    ? { Authorization: `Bearer ${ctx.secrets.NSL_API_KEY}` }
    : {};
  const answer = await fetch(`${input.api}/v1/price-feeds/${input.feed}/report`, { headers });
  if (!answer.ok) throw new Error(`the report: HTTP ${answer.status}`);
  const signed = await answer.json();
  // Recorded now; sent by the relay only because this execution succeeds. The chain checks
  // the signature, the feed, the freshness and that the round is newer than the last one.
  const position = neo.invoke(input.consumer, "settle", [
    neo.bytes(signed.report),
    neo.bytes(signed.signature),
  ]);
  console.log(`round ${signed.round_id} of ${signed.pair}: action ${position} settles it`);
  return { round_id: signed.round_id, price: signed.price, position };
}
