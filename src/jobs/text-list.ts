/**
 * A list sent as text: one address per line, surrounding blanks ignored; `#` starts a comment that runs to
 * the end of its line (no address spelling contains one), and lines left empty are skipped.
 */
export function parseTextList(body: string): string[] {
  const inputs: string[] = [];
  for (const line of body.split('\n')) {
    const hash = line.indexOf('#');
    const text = (hash === -1 ? line : line.slice(0, hash)).trim();
    if (text !== '') inputs.push(text);
  }
  return inputs;
}
