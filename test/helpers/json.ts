/** Top-level keys that occur more than once in a JSON object's text (JSON.parse keeps the last). */
export function duplicateKeys(json: string): string[] {
  const seen = new Set<string>();
  const dups: string[] = [];
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      const str = json.slice(i + 1, j);
      if (depth === 1 && json[j + 1] === ':') {
        if (seen.has(str)) dups.push(str);
        seen.add(str);
      }
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return dups;
}
