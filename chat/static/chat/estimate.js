// What a message will cost at most, as the server will hold it: billing/pricing.py's
// `estimate_input_tokens`, `hold_coins` and `affordable_max_tokens`, repeated exactly (whole
// numbers in BigInt, no floating point; a browser test holds the two to the same figures).
(function () {
  "use strict";

  // About 3 characters a token, plus framing (a generous guess, as for holds).
  function inputTokens(characters) { return Math.ceil(characters / 3) + 20; }

  // Whole coins, rounded up, for `input` tokens in and `output` out at the model's prices
  // (whole numbers of 1/price_scale USD per million tokens).
  function holdCoins(config, model, input, output) {
    const cost = BigInt(input) * BigInt(model.input) + BigInt(output) * BigInt(model.output);
    const numerator = cost * BigInt(config.coins_per_usd);
    const denominator = 1000000n * BigInt(config.price_scale);
    return Number((numerator + denominator - 1n) / denominator);
  }

  // The most a message of `characters` (the conversation's text before it included) costs
  // with `model` and this balance: {coins, tokens} (the reply is shortened to what the balance
  // pays for), {ownKey: true}, or {tooFew: true} when not even a short reply is affordable.
  function worstCase(config, model, characters, balance) {
    if (model.own_key) return { ownKey: true };
    const input = inputTokens(characters);
    const full = holdCoins(config, model, input, model.max_tokens);
    if (full <= balance) return { coins: full, tokens: model.max_tokens };
    let low = 0, high = model.max_tokens;  // the largest output the balance pays for
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if (holdCoins(config, model, input, middle) <= balance) low = middle; else high = middle - 1;
    }
    if (low < Math.min(config.min_reply_tokens, model.max_tokens)) return { tooFew: true };
    return { coins: holdCoins(config, model, input, low), tokens: low };
  }

  window.ChatEstimate = { inputTokens, holdCoins, worstCase };
})();
