import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// Served by Tauri: `devUrl` http://localhost:5173, `frontendDist` ../ui/dist.
export default defineConfig({
  plugins: [svelte()],
  base: './',
  clearScreen: false,
  server: {
    port: 5173,
    strictPort: true,
  },
  // Tauri's own variables (TAURI_ENV_PLATFORM, ...) are readable in the app.
  envPrefix: ['VITE_', 'TAURI_ENV_'],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Linux uses WebKitGTK, macOS WKWebView, Windows WebView2 (Chromium).
    target: ['safari15', 'chrome105'],
    // No inline <script> or data: modules: the CSP is `script-src 'self'`.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
});
