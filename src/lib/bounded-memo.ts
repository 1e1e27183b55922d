/**
 * `compute` remembered per key, for hot paths that meet the same few keys again and again where keys
 * can also come from outside: at most `maxEntries` keys of at most `maxKeyLength` characters are kept,
 * and any other key is computed afresh each time, never stored.
 */
export function boundedMemo<V>(compute: (key: string) => V, maxEntries = 4_096, maxKeyLength = 64): (key: string) => V {
  const memo = new Map<string, V>();
  return (key) => {
    let value = memo.get(key);
    if (value === undefined) {
      value = compute(key);
      if (memo.size < maxEntries && key.length <= maxKeyLength) memo.set(key, value);
    }
    return value;
  };
}
