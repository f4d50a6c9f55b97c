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
