# Installs what Clinic Desk needs on Debian 12 / Ubuntu and is quick when nothing is
# missing. Sourced by scripts/demo and scripts/test; not run on its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The webview, GTK and bundling libraries Tauri builds against; perl and make (in
# build-essential) build the vendored OpenSSL that SQLCipher, the encrypted store,
# links statically; libdbus-1-dev reaches the OS keyring (Secret Service) that keeps
# the store's key.
APP_PACKAGES=(libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev
              libsoup-3.0-dev libdbus-1-dev build-essential perl pkg-config curl file fonts-noto-cjk)
# A virtual display and WebKit's WebDriver, for tests through the real webview;
# PostgreSQL's server binaries, which clinic-central's tests start in a temp dir
# (initdb/pg_ctl, as the `postgres` user under root) so they never skip; Go, Debian's
# Gin and wrk, for the ingest benchmark's side-by-side run against the hospital
# article's Gin server (built offline from these packages; the Go proxy is not needed).
TEST_PACKAGES=(xvfb webkit2gtk-driver xauth sqlite3 postgresql
               golang-go golang-github-gin-gonic-gin-dev golang-github-google-uuid-dev wrk)

ensure_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing system packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

ensure_toolchains() {
    command -v cargo >/dev/null || { echo "Rust is missing: install it with rustup (https://rustup.rs) and re-run." >&2; exit 1; }
    # scripts/test checks formatting and lints.
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        command -v rustup >/dev/null || { echo "rustfmt or clippy is missing and rustup is not there to add them." >&2; exit 1; }
        say "adding rustfmt and clippy"
        rustup component add rustfmt clippy
    fi
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        ensure_packages nodejs npm
    fi
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    if [ "$major" -lt 20 ]; then
        echo "Node.js $major is too old for the UI build (Vite 8 needs Node 20.19 or newer)." >&2
        exit 1
    fi
}

# npm ci only when the lockfile changed since the last install.
ensure_ui_dependencies() {
    local stamp="$ROOT/ui/node_modules/.package-lock.json"
    if [ ! -f "$stamp" ] || [ "$ROOT/ui/package-lock.json" -nt "$stamp" ]; then
        say "installing UI packages"
        (cd "$ROOT/ui" && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

ensure_tauri_driver() {
    if ! command -v tauri-driver >/dev/null; then
        say "installing tauri-driver"
        cargo install tauri-driver --locked --quiet
    fi
}

build_ui() {
    say "building the UI (type check, then bundle)"
    (cd "$ROOT/ui" && npm run --silent build)
}
