/** Which functions a functions directory holds, found the way the Supabase CLI finds them. */

const SKIPPED_DIRS = new Set(["tests"]);

export async function discover(root: string): Promise<string[]> {
  const slugs: string[] = [];
  for await (const entry of Deno.readDir(root)) {
    const name = entry.name;
    if (name.startsWith("_") || name.startsWith(".") || SKIPPED_DIRS.has(name)) continue;
    try {
      if ((await Deno.stat(`${root}/${name}/index.ts`)).isFile) slugs.push(name);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) throw err;
    }
  }
  return slugs.sort();
}
