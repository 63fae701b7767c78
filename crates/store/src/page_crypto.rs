//! SQLCipher's page cipher and page HMAC, computed by the same OpenSSL
//! functions SQLCipher's own provider calls, on contexts made once per thread
//! instead of once per page.
//!
//! Why: SQLCipher 4.14's OpenSSL 3 provider fetches the HMAC implementation by
//! name and builds and frees a new MAC context and a new cipher context (with a
//! fresh AES key schedule) for every page it encrypts, decrypts or signs
//! (`EVP_MAC_fetch`, `EVP_MAC_CTX_new`, `EVP_CIPHER_CTX_new`, `EVP_CipherInit_ex`
//! twice, each fetching AES by name again). Profiled on the nurse's save
//! (`benches/save.rs` in clinic-desk-core, `perf`), that set-up was a fixed cost
//! per page beside the AES and SHA-256 work, with the name hashing and locks
//! it takes. Here the algorithms are fetched once per process, each thread
//! keeps one context per direction and per digest, and a context is keyed again
//! only when the key changes (a thread serving two stores); per page only the
//! IV is set. The save went from 1.37x to 1.26-1.31x plaintext, a pulled page
//! of 1,000 patients from 1.49x to 1.36x (the README's "Encryption's cost").
//!
//! Same library, same algorithms, same bytes: AES-256-CBC without padding over
//! the page, HMAC over the page and its number, so files stay readable by stock
//! SQLCipher (the tests compare every output with SQLCipher's own provider's).
//! Only the two hot functions are replaced, through SQLCipher's extension point
//! (`sqlcipher_get_provider`: "allow an application to fetch the current
//! registered provider and make minor changes to it"); random IVs, key
//! derivation and any call these functions do not handle (another key size, SHA-1)
//! go to SQLCipher's own functions. A RustCrypto cipher in the same place was
//! tried and not kept: its AES-CBC and SHA-256 took 4x and 2.8x the time of
//! OpenSSL's assembly here.

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

use openssl_sys as ossl;

/// SQLCipher's `CIPHER_ENCRYPT` / `CIPHER_DECRYPT`.
const ENCRYPT: c_int = 1;
const DECRYPT: c_int = 0;
/// SQLCipher's `SQLCIPHER_HMAC_SHA256` / `SQLCIPHER_HMAC_SHA512`.
const HMAC_SHA256: c_int = 1;
const HMAC_SHA512: c_int = 2;
const SQLITE_OK: c_int = 0;
const SQLITE_ERROR: c_int = 1;
const KEY_BYTES: usize = 32;
const BLOCK_BYTES: usize = 16;
/// OpenSSL's `OSSL_PARAM_UTF8_STRING` (core.h).
const OSSL_PARAM_UTF8_STRING: u32 = 4;

type CipherFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    mode: c_int,
    key: *const u8,
    key_sz: c_int,
    iv: *const u8,
    input: *const u8,
    in_sz: c_int,
    out: *mut u8,
) -> c_int;

type HmacFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    algorithm: c_int,
    key: *const u8,
    key_sz: c_int,
    input: *const u8,
    in_sz: c_int,
    input2: *const u8,
    in2_sz: c_int,
    out: *mut u8,
) -> c_int;

/// `struct sqlcipher_provider` of SQLCipher 4.14 (sqlcipher.h), field for field.
#[repr(C)]
struct Provider {
    init: Option<unsafe extern "C" fn() -> c_int>,
    shutdown: Option<unsafe extern "C" fn()>,
    get_provider_name: Option<unsafe extern "C" fn(*mut c_void) -> *const c_char>,
    add_random: *const c_void,
    random: *const c_void,
    hmac: Option<HmacFn>,
    kdf: *const c_void,
    cipher: Option<CipherFn>,
    get_cipher: *const c_void,
    get_key_sz: *const c_void,
    get_iv_sz: *const c_void,
    get_block_sz: *const c_void,
    get_hmac_sz: *const c_void,
    ctx_init: *const c_void,
    ctx_free: *const c_void,
    fips_status: *const c_void,
    get_provider_version: *const c_void,
    next: *mut Provider,
}

unsafe extern "C" {
    fn sqlcipher_get_provider() -> *mut Provider;
}

/// SQLCipher's own functions, for the calls handed back, and OpenSSL's
/// algorithms, fetched once. A fetched `EVP_CIPHER` / `EVP_MAC` is immutable and
/// may be used from any thread (OpenSSL's "Library contexts" and fetching docs).
struct Installed {
    cipher: CipherFn,
    hmac: HmacFn,
    aes: *mut ossl::EVP_CIPHER,
    mac: *mut ossl::EVP_MAC,
}

// SAFETY: see `Installed`: the pointers are to immutable, thread-safe OpenSSL
// objects that live until the process ends (never freed).
unsafe impl Send for Installed {}
unsafe impl Sync for Installed {}

static INSTALLED: OnceLock<Option<Installed>> = OnceLock::new();

/// Puts the two functions into SQLCipher's registered provider, once per
/// process. `conn` only proves SQLite (and with it SQLCipher's provider) is
/// initialised. Called before the process keys its first connection (every
/// keyed connection points at the provider, so nothing reads the two pointers
/// while they are written). Returns whether the replacement is in place; if it
/// is not, SQLCipher's own functions do the work, slower but the same.
pub(crate) fn install(_conn: &rusqlite::Connection) -> bool {
    INSTALLED
        .get_or_init(|| {
            // SAFETY: fetching by name returns an owned reference or null.
            let (aes, mac) = unsafe {
                (
                    ossl::EVP_CIPHER_fetch(
                        std::ptr::null_mut(),
                        c"AES-256-CBC".as_ptr(),
                        std::ptr::null(),
                    ),
                    ossl::EVP_MAC_fetch(std::ptr::null_mut(), c"HMAC".as_ptr(), std::ptr::null()),
                )
            };
            if aes.is_null() || mac.is_null() {
                tracing::warn!(
                    "OpenSSL has no AES-256-CBC or HMAC; SQLCipher's own page cipher stays"
                );
                return None;
            }
            // SAFETY: SQLCipher returns its default provider, registered when
            // SQLite was initialised (`_conn` is open); it lives until
            // `sqlite3_shutdown`, which nothing here calls. The two writes happen
            // once, before any keyed connection reads them (see above).
            unsafe {
                let provider = sqlcipher_get_provider().as_mut()?;
                let installed = Installed {
                    cipher: provider.cipher?,
                    hmac: provider.hmac?,
                    aes,
                    mac,
                };
                provider.cipher = Some(page_cipher);
                provider.hmac = Some(page_hmac);
                Some(installed)
            }
        })
        .is_some()
}

fn installed() -> &'static Installed {
    match INSTALLED.get() {
        Some(Some(installed)) => installed,
        // The functions below are reachable only once `install` has stored these.
        _ => unreachable!("page crypto called before it was installed"),
    }
}

/// A key kept to tell whether a context already holds it; zeroed when
/// dropped, like the key schedule OpenSSL clears when the context is freed.
struct KeyCopy(Vec<u8>);

impl KeyCopy {
    /// Whether `held` is `key`; when it is not, `held` is cleared, for the
    /// caller to key the context and then [`KeyCopy::keep`] the new key.
    fn holds(held: &mut Option<KeyCopy>, key: &[u8]) -> bool {
        if held.as_ref().is_some_and(|k| k.0 == key) {
            return true;
        }
        *held = None;
        false
    }

    fn keep(held: &mut Option<KeyCopy>, key: &[u8]) {
        *held = Some(KeyCopy(key.to_vec()));
    }
}

impl Drop for KeyCopy {
    fn drop(&mut self) {
        for b in &mut self.0 {
            // SAFETY: a valid, exclusive byte; volatile so the zeroing is kept.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// One cipher context for one direction (AES decryption runs on the inverse
/// key schedule), with the key it holds.
struct CipherContext {
    ctx: *mut ossl::EVP_CIPHER_CTX,
    key: Option<KeyCopy>,
}

impl CipherContext {
    fn new() -> Option<Self> {
        // SAFETY: a new context or null.
        let ctx = unsafe { ossl::EVP_CIPHER_CTX_new() };
        (!ctx.is_null()).then_some(Self { ctx, key: None })
    }

    /// Ready for one page: keyed with `key` (again only if it changed) and
    /// started on `iv` (16 bytes).
    fn start(&mut self, mode: c_int, key: &[u8], iv: *const u8) -> bool {
        // SAFETY: a live context, a 32-byte key and a 16-byte IV (the caller's
        // checks), the cipher fetched once. With the key held, only the IV is
        // set, which keeps the key schedule and restarts the chaining.
        unsafe {
            if KeyCopy::holds(&mut self.key, key) {
                return ossl::EVP_CipherInit_ex(
                    self.ctx,
                    std::ptr::null(),
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    iv,
                    mode,
                ) == 1;
            }
            let keyed = ossl::EVP_CipherInit_ex(
                self.ctx,
                installed().aes,
                std::ptr::null_mut(),
                key.as_ptr(),
                iv,
                mode,
            ) == 1
                && ossl::EVP_CIPHER_CTX_set_padding(self.ctx, 0) == 1;
            if keyed {
                KeyCopy::keep(&mut self.key, key);
            }
            keyed
        }
    }
}

impl Drop for CipherContext {
    fn drop(&mut self) {
        // SAFETY: made by EVP_CIPHER_CTX_new, freed once; OpenSSL cleanses it.
        unsafe { ossl::EVP_CIPHER_CTX_free(self.ctx) }
    }
}

/// One HMAC context for one digest, with the key it holds.
struct MacContext {
    ctx: *mut ossl::EVP_MAC_CTX,
    key: Option<KeyCopy>,
}

impl MacContext {
    fn new() -> Option<Self> {
        // SAFETY: a new context of the fetched HMAC, or null.
        let ctx = unsafe { ossl::EVP_MAC_CTX_new(installed().mac) };
        (!ctx.is_null()).then_some(Self { ctx, key: None })
    }

    /// Ready for one MAC with `key` over `digest` (again only if the key changed).
    fn start(&mut self, key: &[u8], digest: &'static CStr) -> bool {
        // SAFETY: a live context. With the key held, a null key restarts HMAC
        // on it (OpenSSL's hmac_init); a new key goes in with the digest's name,
        // a static string OpenSSL only reads.
        unsafe {
            if KeyCopy::holds(&mut self.key, key) {
                return ossl::EVP_MAC_init(self.ctx, std::ptr::null(), 0, std::ptr::null()) == 1;
            }
            let params = [
                ossl::OSSL_PARAM {
                    key: c"digest".as_ptr(),
                    data_type: OSSL_PARAM_UTF8_STRING,
                    data: digest.as_ptr().cast_mut().cast(),
                    data_size: digest.count_bytes(),
                    return_size: usize::MAX,
                },
                ossl::OSSL_PARAM_construct_end(),
            ];
            let keyed = ossl::EVP_MAC_init(self.ctx, key.as_ptr(), key.len(), params.as_ptr()) == 1;
            if keyed {
                KeyCopy::keep(&mut self.key, key);
            }
            keyed
        }
    }
}

impl Drop for MacContext {
    fn drop(&mut self) {
        // SAFETY: made by EVP_MAC_CTX_new, freed once; OpenSSL cleanses it.
        unsafe { ossl::EVP_MAC_CTX_free(self.ctx) }
    }
}

/// A thread's contexts, made the first time each is needed.
#[derive(Default)]
struct Contexts {
    encrypt: Option<CipherContext>,
    decrypt: Option<CipherContext>,
    sha256: Option<MacContext>,
    sha512: Option<MacContext>,
}

thread_local! {
    static CONTEXTS: RefCell<Contexts> = RefCell::default();
}

/// Runs `f` on the context `pick` chooses from the thread's, made first if need
/// be. `None` when none could be made, when the thread's are in use (SQLCipher
/// does not re-enter its provider, so never) or already gone (a connection
/// closed by another thread-local's destructor as the thread ends): the caller
/// then hands the call back to SQLCipher's own function, which makes its own.
/// Never a panic, which would abort the process from this `extern "C"` code.
fn with_context<C, T>(
    pick: fn(&mut Contexts) -> &mut Option<C>,
    make: impl FnOnce() -> Option<C>,
    f: impl FnOnce(&mut C) -> Option<T>,
) -> Option<T> {
    CONTEXTS
        .try_with(|contexts| {
            let mut contexts = contexts.try_borrow_mut().ok()?;
            let slot = pick(&mut contexts);
            if slot.is_none() {
                *slot = Some(make()?);
            }
            f(slot.as_mut()?)
        })
        .ok()
        .flatten()
}

/// AES-256-CBC over `in_sz` bytes, no padding, `input` to `out` (the same
/// buffer or apart; a partial overlap is handed back to SQLCipher's function).
unsafe extern "C" fn page_cipher(
    ctx: *mut c_void,
    mode: c_int,
    key: *const u8,
    key_sz: c_int,
    iv: *const u8,
    input: *const u8,
    in_sz: c_int,
    out: *mut u8,
) -> c_int {
    let hand_back = || {
        // SAFETY: the caller's arguments, passed on unchanged.
        unsafe { (installed().cipher)(ctx, mode, key, key_sz, iv, input, in_sz, out) }
    };
    let len = usize::try_from(in_sz).unwrap_or(0);
    let apart_or_same = input == out.cast_const() || (input as usize).abs_diff(out as usize) >= len;
    let ours = usize::try_from(key_sz) == Ok(KEY_BYTES)
        && len > 0
        && len % BLOCK_BYTES == 0
        && (mode == ENCRYPT || mode == DECRYPT)
        && ![key, iv, input].iter().any(|p| p.is_null())
        && !out.is_null()
        && apart_or_same;
    if !ours {
        return hand_back();
    }
    // SAFETY: SQLCipher passes a 32-byte key (checked above).
    let key_bytes = unsafe { std::slice::from_raw_parts(key, KEY_BYTES) };
    let pick: fn(&mut Contexts) -> &mut Option<CipherContext> = if mode == ENCRYPT {
        |c| &mut c.encrypt
    } else {
        |c| &mut c.decrypt
    };
    let done = with_context(pick, CipherContext::new, |context| {
        if !context.start(mode, key_bytes, iv) {
            return None;
        }
        let mut written: c_int = 0;
        // SAFETY: `in_sz` bytes at `input` and room for them at `out`, the same
        // buffer or apart (checked); no padding, whole blocks, so the update
        // writes exactly `in_sz` bytes and a final call would add none.
        let updated =
            unsafe { ossl::EVP_CipherUpdate(context.ctx, out, &mut written, input, in_sz) };
        Some(updated == 1 && written == in_sz)
    });
    match done {
        Some(true) => SQLITE_OK,
        Some(false) => SQLITE_ERROR,
        None => hand_back(),
    }
}

/// HMAC of `input` followed by `input2` (when not null) into `out`.
unsafe extern "C" fn page_hmac(
    ctx: *mut c_void,
    algorithm: c_int,
    key: *const u8,
    key_sz: c_int,
    input: *const u8,
    in_sz: c_int,
    input2: *const u8,
    in2_sz: c_int,
    out: *mut u8,
) -> c_int {
    let hand_back = || {
        // SAFETY: the caller's arguments, passed on unchanged.
        unsafe {
            (installed().hmac)(
                ctx, algorithm, key, key_sz, input, in_sz, input2, in2_sz, out,
            )
        }
    };
    let (Ok(key_len), Ok(len), Ok(len2)) = (
        usize::try_from(key_sz),
        usize::try_from(in_sz),
        usize::try_from(in2_sz),
    ) else {
        return hand_back();
    };
    let (digest, digest_len) = match algorithm {
        HMAC_SHA256 => (c"sha256", 32),
        HMAC_SHA512 => (c"sha512", 64),
        _ => return hand_back(),
    };
    if [key, input].iter().any(|p| p.is_null()) || out.is_null() {
        return hand_back();
    }
    // SAFETY: SQLCipher passes `key_sz` readable bytes of key.
    let key_bytes = unsafe { std::slice::from_raw_parts(key, key_len) };
    let pick: fn(&mut Contexts) -> &mut Option<MacContext> = if algorithm == HMAC_SHA256 {
        |c| &mut c.sha256
    } else {
        |c| &mut c.sha512
    };
    let done = with_context(pick, MacContext::new, |context| {
        if !context.start(key_bytes, digest) {
            return None;
        }
        let mut written = 0usize;
        // SAFETY: `in_sz` bytes at `input`, `in2_sz` at `input2` when it is not
        // null, and room for the digest at `out` (SQLCipher's `get_hmac_sz`).
        let signed = unsafe {
            ossl::EVP_MAC_update(context.ctx, input, len) == 1
                && (input2.is_null() || ossl::EVP_MAC_update(context.ctx, input2, len2) == 1)
                && ossl::EVP_MAC_final(context.ctx, out, &mut written, digest_len) == 1
        };
        Some(signed && written == digest_len)
    });
    match done {
        Some(true) => SQLITE_OK,
        Some(false) => SQLITE_ERROR,
        None => hand_back(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn installed_here() -> rusqlite::Connection {
        // SQLite must be initialised for SQLCipher to have its provider.
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        assert!(install(&conn));
        conn
    }

    fn run_cipher(f: CipherFn, mode: c_int, key: &[u8], iv: &[u8], input: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; input.len()];
        let rc = unsafe {
            f(
                std::ptr::null_mut(),
                mode,
                key.as_ptr(),
                key.len() as c_int,
                iv.as_ptr(),
                input.as_ptr(),
                input.len() as c_int,
                out.as_mut_ptr(),
            )
        };
        assert_eq!(rc, SQLITE_OK);
        out
    }

    fn bytes(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[rstest]
    #[case::a_4k_page_less_its_reserve(4096 - 48)]
    #[case::a_4k_page_less_sha512_reserve(4096 - 80)]
    #[case::a_1k_page(1024 - 48)]
    #[case::one_block(16)]
    fn the_cipher_gives_sqlciphers_bytes_both_ways(#[case] len: usize) {
        let _c = installed_here();
        let (key, page) = (bytes(7, 32), bytes(3, len));
        // Several IVs in a row on one context: each page starts its own chain.
        for seed in [9, 10, 9] {
            let iv = bytes(seed, 16);
            let theirs = run_cipher(installed().cipher, ENCRYPT, &key, &iv, &page);
            let ours = run_cipher(page_cipher, ENCRYPT, &key, &iv, &page);
            assert_eq!(theirs, ours);
            assert_ne!(ours, page);
            assert_eq!(
                run_cipher(installed().cipher, DECRYPT, &key, &iv, &ours),
                page
            );
            assert_eq!(run_cipher(page_cipher, DECRYPT, &key, &iv, &ours), page);
        }
    }

    #[test]
    fn a_new_key_on_the_same_thread_is_used_not_the_last_one() {
        let _c = installed_here();
        let (iv, page) = (bytes(2, 16), bytes(5, 4048));
        for key in [bytes(1, 32), bytes(200, 32), bytes(1, 32)] {
            let theirs = run_cipher(installed().cipher, ENCRYPT, &key, &iv, &page);
            assert_eq!(run_cipher(page_cipher, ENCRYPT, &key, &iv, &page), theirs);
            assert_eq!(run_cipher(page_cipher, DECRYPT, &key, &iv, &theirs), page);
        }
    }

    #[test]
    fn the_cipher_works_in_place() {
        let _c = installed_here();
        let (key, iv, page) = (bytes(1, 32), bytes(2, 16), bytes(5, 4048));
        let mut buf = page.clone();
        for mode in [ENCRYPT, DECRYPT] {
            let p = buf.as_mut_ptr();
            let rc = unsafe {
                page_cipher(
                    std::ptr::null_mut(),
                    mode,
                    key.as_ptr(),
                    32,
                    iv.as_ptr(),
                    p,
                    buf.len() as c_int,
                    p,
                )
            };
            assert_eq!(rc, SQLITE_OK);
            if mode == ENCRYPT {
                assert_eq!(
                    buf,
                    run_cipher(installed().cipher, ENCRYPT, &key, &iv, &page)
                );
            }
        }
        assert_eq!(buf, page);
    }

    #[rstest]
    #[case::sha256_page_and_number(HMAC_SHA256, 32, 4064, Some(4))]
    #[case::sha512_page_and_number(HMAC_SHA512, 64, 4032, Some(4))]
    #[case::sha256_one_input(HMAC_SHA256, 32, 100, None)]
    #[case::sha256_key_longer_than_a_block(HMAC_SHA256, 32, 64, Some(4))]
    #[case::sha1_is_left_to_sqlcipher(0, 20, 4076, Some(4))]
    fn the_hmac_gives_sqlciphers_bytes(
        #[case] algorithm: c_int,
        #[case] digest: usize,
        #[case] len: usize,
        #[case] second: Option<usize>,
    ) {
        let _c = installed_here();
        // A key longer than a SHA-256 block in one case, and two keys in a row
        // on the thread's context.
        for key in [bytes(11, if len == 64 { 200 } else { 32 }), bytes(12, 32)] {
            let (first, two) = (bytes(4, len), second.map(|n| bytes(8, n)));
            let run = |f: HmacFn| {
                let mut out = vec![0u8; digest];
                let rc = unsafe {
                    f(
                        std::ptr::null_mut(),
                        algorithm,
                        key.as_ptr(),
                        key.len() as c_int,
                        first.as_ptr(),
                        first.len() as c_int,
                        two.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()),
                        two.as_ref().map_or(0, |t| t.len() as c_int),
                        out.as_mut_ptr(),
                    )
                };
                assert_eq!(rc, SQLITE_OK);
                out
            };
            let theirs = run(installed().hmac);
            assert_eq!(run(page_hmac), theirs);
            // Twice with the same key: the restarted context gives the same MAC.
            assert_eq!(run(page_hmac), theirs);
            assert!(theirs.iter().any(|b| *b != 0));
        }
    }
}
