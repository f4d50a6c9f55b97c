/**
 * Weighted water-filling: share `amount` among items that can each take up to `caps[i]`, in
 * proportion to `weights[i]`, no item above its cap. Item i gets min(caps[i], weights[i] x L)
 * for the one level L at which the total is `amount` (max-min fairness with weights). Results
 * are whole KiB, rounded down, so the total never exceeds `amount`; equal items get equal
 * shares. O(n log n) (one sort).
 */
export function waterfill(caps: ArrayLike<number>, weights: ArrayLike<number>, amount: number): Float64Array {
  const n = caps.length;
  const out = new Float64Array(n);
  if (n === 0 || amount <= 0) return out;
  let total = 0;
  for (let i = 0; i < n; i++) total += Math.max(0, caps[i] ?? 0);
  if (amount >= total) {
    for (let i = 0; i < n; i++) out[i] = Math.max(0, caps[i] ?? 0);
    return out;
  }
  const order = new Int32Array(n);
  const ratio = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    order[i] = i;
    ratio[i] = Math.max(0, caps[i] ?? 0) / Math.max(1e-9, weights[i] ?? 1);
  }
  order.sort((a, b) => (ratio[a] ?? 0) - (ratio[b] ?? 0) || a - b);
  let remaining = amount;
  let weightLeft = 0;
  for (let i = 0; i < n; i++) weightLeft += Math.max(1e-9, weights[i] ?? 1);
  let k = 0;
  // Items whose cap is reached below the level are filled; the level comes from the rest.
  for (; k < n; k++) {
    const i = order[k] ?? 0;
    const w = Math.max(1e-9, weights[i] ?? 1);
    const level = remaining / weightLeft;
    if ((ratio[i] ?? 0) > level) break;
    const cap = Math.max(0, caps[i] ?? 0);
    out[i] = cap;
    remaining -= cap;
    weightLeft -= w;
  }
  const level = weightLeft > 0 ? remaining / weightLeft : 0;
  for (; k < n; k++) {
    const i = order[k] ?? 0;
    const w = Math.max(1e-9, weights[i] ?? 1);
    out[i] = Math.min(Math.max(0, caps[i] ?? 0), Math.floor(w * level));
  }
  return out;
}

/**
 * Water-filling with two price segments per item: the first `first[i]` KiB cost 1 per KiB, the
 * next `second[i]` cost `k` per KiB (k >= 1). Item i gets what a cost budget of w_i x L buys it,
 * for the one level L at which the total is `amount`:
 *
 *   a_i(L) = min(first_i, w_i L) + min(second_i, max(0, w_i L - first_i) / k)
 *
 * k = 1 is plain water-filling of first + second; k = Infinity fills every first segment before
 * any second one. Monotone in `amount`, whole KiB rounded down (the total never exceeds
 * `amount`), equal items get equal shares. O(n log n) (one sort of the 2n breakpoints).
 */
export function waterfillPriced(
  first: ArrayLike<number>,
  second: ArrayLike<number>,
  weights: ArrayLike<number>,
  k: number,
  amount: number,
): Float64Array {
  const n = first.length;
  const out = new Float64Array(n);
  if (n === 0 || amount <= 0) return out;
  let total = 0;
  for (let i = 0; i < n; i++) total += Math.max(0, first[i] ?? 0) + Math.max(0, second[i] ?? 0);
  if (amount >= total) {
    for (let i = 0; i < n; i++) out[i] = Math.max(0, first[i] ?? 0) + Math.max(0, second[i] ?? 0);
    return out;
  }
  if (!(k < Infinity)) {
    // Strict tiers: every first segment before any second one.
    const a = waterfill(first, weights, amount);
    let used = 0;
    for (let i = 0; i < n; i++) used += a[i] ?? 0;
    let allFirst = true;
    for (let i = 0; i < n; i++) if ((a[i] ?? 0) < Math.max(0, first[i] ?? 0)) allFirst = false;
    if (allFirst) {
      const b = waterfill(second, weights, amount - used);
      for (let i = 0; i < n; i++) a[i] = (a[i] ?? 0) + (b[i] ?? 0);
    }
    return a;
  }
  const kk = Math.max(1, k);
  // Breakpoints in L: where an item's first segment fills (its slope drops from w to w/k), and
  // where its second fills (slope 0).
  const at = new Float64Array(2 * n);
  const dSlope = new Float64Array(2 * n);
  const order = new Int32Array(2 * n);
  let slope = 0;
  for (let i = 0; i < n; i++) {
    const w = Math.max(1e-9, weights[i] ?? 1);
    const f = Math.max(0, first[i] ?? 0);
    const s = Math.max(0, second[i] ?? 0);
    at[2 * i] = f / w;
    dSlope[2 * i] = f > 0 ? (s > 0 ? w / kk - w : -w) : 0;
    at[2 * i + 1] = (f + kk * s) / w;
    dSlope[2 * i + 1] = s > 0 ? -w / kk : 0;
    // Initial slope: w while the first segment fills; w/k if the item starts in its second.
    slope += f > 0 ? w : s > 0 ? w / kk : 0;
    order[2 * i] = 2 * i;
    order[2 * i + 1] = 2 * i + 1;
  }
  order.sort((a, b) => (at[a] ?? 0) - (at[b] ?? 0) || a - b);
  let level = 0;
  let sum = 0;
  for (let e = 0; e < 2 * n; e++) {
    const j = order[e] ?? 0;
    const next = at[j] ?? 0;
    const gain = slope * (next - level);
    if (sum + gain >= amount) {
      // The level lies before this breakpoint (never past it, whatever the rounding: so a
      // larger amount never yields a lower level).
      if (slope > 0) level = Math.min(next, level + (amount - sum) / slope);
      sum = amount;
      break;
    }
    sum += gain;
    level = next;
    slope += dSlope[j] ?? 0;
  }
  let given = 0;
  for (let i = 0; i < n; i++) {
    const w = Math.max(1e-9, weights[i] ?? 1);
    const f = Math.max(0, first[i] ?? 0);
    const s = Math.max(0, second[i] ?? 0);
    // Segments whose breakpoint the level reached are full, exactly.
    const a1 = (at[2 * i] ?? 0) <= level ? f : Math.min(f, w * level);
    const a2 = (at[2 * i + 1] ?? 0) <= level ? s : Math.min(s, Math.max(0, w * level - f) / kk);
    out[i] = Math.floor(a1 + a2);
    given += out[i] ?? 0;
  }
  // Rounding in `level` can overshoot by a KiB or so: take it back, never past the amount.
  for (let i = 0; given > amount && i < n; i++) {
    const back = Math.min(out[i] ?? 0, Math.ceil(given - amount));
    out[i] = (out[i] ?? 0) - back;
    given -= back;
  }
  return out;
}
