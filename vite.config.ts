import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/*
 * The analysts' page: web/ built into dist/web, which src/routes/web.ts serves. It imports the command's own
 * address extraction (src/input/extract.ts), so a pasted list or a dropped file is read by the same rules.
 */
export default defineConfig({
  root: fileURLToPath(new URL('web', import.meta.url)),
  base: '/',
  build: {
    outDir: fileURLToPath(new URL('dist/web', import.meta.url)),
    emptyOutDir: true,
    // The browsers analysts use; nothing older needs to be supported, so no polyfill is added.
    target: 'es2022',
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
