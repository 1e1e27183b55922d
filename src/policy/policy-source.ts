import { policySetTextToParts, policyToJson, type DetailedError, type PolicyJson } from '@cedar-policy/cedar-wasm/nodejs';

/** One `.cedar` file as given to the compiler. */
export interface PolicyFile {
  file: string;
  text: string;
}

/** One policy cut out of its file, with the id the rest of tessera knows it by. */
export interface SourcePolicy {
  id: string;
  file: string;
  /** Where the policy starts in its file, to turn Cedar's policy-relative offsets into file lines. */
  offset: number;
  text: string;
  effect: 'permit' | 'forbid';
  /** Cedar gives `null` for a bare annotation such as `@step_up`. */
  annotations: Record<string, string | null>;
  json: PolicyJson;
}

/** `file:line:col` for a character offset, as editors and CI annotations expect. */
export function fileLocation(file: string, text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `${file}:${before.length}:${before.at(-1)!.length + 1}`;
}

/** A Cedar error as one line: location, message and Cedar's help when it has some. */
export function describeCedarError(where: string, error: DetailedError): string {
  return `${where}: ${error.message}${error.help ? ` (${error.help})` : ''}`;
}

/**
 * Cuts every file into its policies. Ids come from `@id("...")`, else `<file>#<index>` in source order.
 * Cedar returns the parts sorted by its generated ids (policy0, policy1, policy10, …), not in source
 * order, so the index is recovered from each part's position in the file.
 */
export function splitPolicyFiles(files: PolicyFile[]): { policies: SourcePolicy[]; problems: string[] } {
  const policies: SourcePolicy[] = [];
  const problems: string[] = [];
  for (const { file, text } of files) {
    const parts = policySetTextToParts(text);
    if (parts.type === 'failure') {
      for (const e of parts.errors) {
        problems.push(describeCedarError(fileLocation(file, text, e.sourceLocations?.[0]?.start ?? 0), e));
      }
      continue;
    }
    if (parts.policy_templates.length > 0) problems.push(`${file}: templates (policies with ?principal or ?resource slots) are not supported`);
    const claimed = new Set<number>();
    const located = parts.policies.map((part) => {
      let at = text.indexOf(part);
      while (at >= 0 && claimed.has(at)) at = text.indexOf(part, at + 1);
      if (at < 0) throw new Error(`Cedar returned a policy of ${file} that is not a slice of its text`);
      claimed.add(at);
      return { part, at };
    });
    located.sort((a, b) => a.at - b.at);
    located.forEach(({ part, at }, index) => {
      const json = policyToJson(part);
      if (json.type === 'failure') {
        problems.push(...json.errors.map((e) => describeCedarError(fileLocation(file, text, at), e)));
        return;
      }
      const annotations = (json.json.annotations ?? {}) as Record<string, string | null>;
      const id = annotations.id ?? `${file}#${index}`;
      policies.push({ id, file, offset: at, text: part, effect: json.json.effect, annotations, json: json.json });
    });
  }
  return { policies, problems };
}
