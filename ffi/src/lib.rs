//! The C ABI of iotdisco: an XEP-0347 Thing Registry for XMPP servers written in C
//! (or anything that can call C). It wraps one [`iotdisco::Engine`] per opaque
//! `iotdisco_registry` and exposes its three sans-I/O calls (`handle`, `presence`,
//! `tick`) with the stanzas to send delivered through a host callback. The header
//! `include/iotdisco.h` is generated from this file by cbindgen
//! (`ffi/cbindgen.toml`; `tests/header.rs` fails when it drifts) and the C test
//! programs in `tests/c/` drive the real static library, under valgrind too.
//!
//! Guarantees: no panic unwinds into C (every entry point runs under
//! `catch_unwind`; a panic returns `IOTDISCO_EPANIC` and poisons the registry it
//! happened in); no lock is held while the host's `send` callback runs (it may call
//! back into the library); the only global state is the thread-local error
//! message. Costs: one call is the engine call plus one callback per stanza; the
//! stanza buffers are pooled per registry, so a steady load allocates nothing for
//! them.
//!
//! Exported items must stay in this file: the header check parses it alone.

#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use iotdisco::options::Options;
use iotdisco::{BareJid, Engine, Handled, Outbox, Registry};

/// What a call did. Every `int` an `iotdisco_*` function returns is one of these.
/// Whenever a call returns something other than `IOTDISCO_OK`,
/// `iotdisco_last_error()` says why, in English; after `IOTDISCO_OK` it is "".
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum iotdisco_status {
    /// Done. For `iotdisco_handle`: the stanza was a discovery or service
    /// discovery request, or a thing's answer to one of the registry's
    /// notifications, and every stanza to send has been passed to `send`
    /// (possibly none: an answer, or a disown still waiting for the thing). A
    /// malformed discovery request is `IOTDISCO_OK` too: its `bad-request` error
    /// stanza was sent.
    IOTDISCO_OK = 0,
    /// `iotdisco_handle` only: not a discovery or disco IQ, nor an answer to one
    /// of the registry's notifications (also: an empty stanza, or not an `<iq/>`
    /// at all). Nothing was sent; the server routes the stanza elsewhere.
    IOTDISCO_NOT_MINE = 1,
    /// A NULL or invalid argument (NULL pointer, string not UTF-8, bad JID, bad
    /// option). Nothing happened; `iotdisco_last_error()` names the argument or
    /// the option key.
    IOTDISCO_EINVAL = 2,
    /// `iotdisco_open`: the database could not be opened (bad path, held by
    /// another process, another format, damaged record); the message is the
    /// store's. `iotdisco_handle`: the store failed while serving the request;
    /// the `internal-server-error` reply was sent (the change was not made) and
    /// the message is the store's, for the server's log.
    IOTDISCO_ESTORAGE = 3,
    /// An internal panic was caught; `iotdisco_last_error()` has its message.
    /// The registry it happened in is poisoned: every later call on it returns
    /// `IOTDISCO_EPANIC` ("poisoned") except `iotdisco_close`, which still
    /// flushes and frees it. Its database is consistent (changes reach the store
    /// before memory), so closing and opening it again recovers.
    IOTDISCO_EPANIC = 4,
    /// `iotdisco_handle` only: an `<iq/>` so broken that no reply can be
    /// addressed (no `id`, missing or invalid `from`, unreadable attributes).
    /// Nothing was sent; `iotdisco_last_error()` says what was wrong. The server
    /// may log it and drop the stanza.
    IOTDISCO_DROPPED = 5,
}

use iotdisco_status::*;

/// `iotdisco_next_deadline` writes this when nothing waits for a time-out.
pub const IOTDISCO_NO_DEADLINE: u64 = u64::MAX;

/// The host's stanza sink. Called once per stanza to send, in order,
/// synchronously, on the calling thread, before the `iotdisco_*` call that
/// produced it returns. `stanza` points to `len` bytes of UTF-8 XML (one complete
/// `<iq/>`, NOT NUL-terminated), owned by the library and valid only until the
/// callback returns: copy it to keep it. `user` is the pointer the host passed
/// in, never touched by the library. The callback may call any `iotdisco_*`
/// function (no lock is held while it runs) except `iotdisco_close` on the
/// registry that is calling it. It must return normally: it must not unwind
/// (C++ exception, Rust panic) or `longjmp` through the library.
pub type iotdisco_send_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, stanza: *const c_char, len: usize)>;

/// Most stanza buffers a registry keeps for reuse.
const POOL: usize = 16;
/// A buffer that held more than this is freed instead of kept.
const POOL_BYTES: usize = 64 * 1024;

/// An open registry (opaque to C). Created by `iotdisco_open`, freed by
/// `iotdisco_close`. Safe to use from any number of threads at once.
pub struct iotdisco_registry {
    engine: Engine,
    /// Set when a panic was caught inside a call on this registry.
    poisoned: AtomicBool,
    /// Stanza buffers for reuse (no allocation per call in the steady state).
    outboxes: Mutex<Vec<Outbox>>,
}

// The documented thread safety, checked at compile time.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<iotdisco_registry>();
};

impl iotdisco_registry {
    fn outbox(&self) -> Outbox {
        self.outboxes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    fn recycle(&self, mut out: Outbox) {
        if out.iter().map(<[u8]>::len).sum::<usize>() > POOL_BYTES {
            return;
        }
        out.clear();
        let mut pool = self.outboxes.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < POOL {
            pool.push(out);
        }
    }
}

// ---------------------------------------------------------------------------
// The thread-local error message.

thread_local! {
    /// The last failing call's message, NUL-terminated; empty after a success.
    static LAST_ERROR: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn set_error(message: &str) {
    // `try_with`: during thread tear-down the slot may be gone; the message is
    // then lost, which is all that can be done.
    let _ = LAST_ERROR.try_with(|e| {
        let mut e = e.borrow_mut();
        e.clear();
        // A C string cannot hold NUL; messages may quote input.
        e.extend(message.bytes().map(|b| if b == 0 { b'?' } else { b }));
        e.push(0);
    });
}

fn clear_error() {
    let _ = LAST_ERROR.try_with(|e| e.borrow_mut().clear());
}

/// A status that comes with a message for `iotdisco_last_error`.
#[derive(Debug)]
struct Report {
    status: iotdisco_status,
    message: String,
}

fn einval(message: impl Into<String>) -> Report {
    Report {
        status: IOTDISCO_EINVAL,
        message: message.into(),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("internal panic: {what}")
}

/// Runs an entry point's body: a panic becomes `IOTDISCO_EPANIC` (and
/// `on_panic` runs), a report sets the thread's error, success clears it.
fn guard(body: impl FnOnce() -> Result<iotdisco_status, Report>, on_panic: impl FnOnce()) -> c_int {
    let status = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => {
            clear_error();
            status
        }
        Ok(Err(report)) => {
            set_error(&report.message);
            report.status
        }
        Err(payload) => {
            on_panic();
            set_error(&panic_message(payload.as_ref()));
            IOTDISCO_EPANIC
        }
    };
    status as c_int
}

/// [`guard`] for a call on a registry: NULL and poison checks first, and a
/// panic poisons the registry.
///
/// # Safety
/// `reg` is NULL or a registry returned by `iotdisco_open` and not yet closed.
unsafe fn with_registry(
    reg: *const iotdisco_registry,
    body: impl FnOnce(&iotdisco_registry) -> Result<iotdisco_status, Report>,
) -> c_int {
    // SAFETY: the caller promises `reg` is NULL or a live registry; the
    // registry is only ever used through shared references (it is Sync).
    let Some(reg) = (unsafe { reg.as_ref() }) else {
        set_error("reg is NULL");
        return IOTDISCO_EINVAL as c_int;
    };
    guard(
        || {
            if reg.poisoned.load(Ordering::Acquire) {
                return Err(Report {
                    status: IOTDISCO_EPANIC,
                    message: "the registry is poisoned: an earlier call on it panicked; \
                              close it and open it again (its database is consistent)"
                        .into(),
                });
            }
            body(reg)
        },
        || reg.poisoned.store(true, Ordering::Release),
    )
}

/// Checks a callback argument.
fn callback(send: iotdisco_send_fn) -> Result<SendFn, Report> {
    send.ok_or_else(|| einval("send is NULL"))
}

type SendFn = unsafe extern "C" fn(*mut c_void, *const c_char, usize);

/// Passes every stanza of `out` to the host, then recycles the buffer.
fn deliver(reg: &iotdisco_registry, out: Outbox, send: SendFn, user: *mut c_void) {
    for stanza in out.iter() {
        // SAFETY: `send` is the host's callback with the documented signature;
        // `stanza` is valid for `len` bytes for the whole call (the outbox is
        // owned here and not touched until the callback returned).
        unsafe { send(user, stanza.as_ptr().cast(), stanza.len()) };
    }
    reg.recycle(out);
}

/// A C string argument as UTF-8.
///
/// # Safety
/// `s` is NULL or a NUL-terminated string valid for reads.
unsafe fn utf8<'a>(s: *const c_char, name: &str) -> Result<Option<&'a str>, Report> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string that
    // outlives the call.
    let c = unsafe { CStr::from_ptr(s) };
    c.to_str()
        .map(Some)
        .map_err(|_| einval(format!("{name} is not UTF-8")))
}

// ---------------------------------------------------------------------------
// The ABI.

/// Opens a registry served at `registry_jid` and writes it to `*out`.
///
/// - `registry_jid`: the registry's bare JID or domain (e.g.
///   "discovery.example.org"): the `from` of the notifications it sends to things
///   (replies come from the address each request was sent to). Read during the
///   call only.
/// - `db_path`: a directory holding (or to hold) the sled database; NULL keeps
///   the registry in memory. Read during the call only. Only one process may
///   have a database open at a time.
/// - `options`: NULL (every default) or "key=value;key=value" (see
///   ffi/README.md for every key). Read during the call only.
/// - `out`: receives the new registry, owned by the caller until it passes it to
///   `iotdisco_close`; set to NULL when the call fails.
///
/// Returns `IOTDISCO_OK`, `IOTDISCO_EINVAL` (NULL `registry_jid` or `out`, a
/// string that is not UTF-8, a bad JID, an empty `db_path`, a bad option: the
/// message names the key) or `IOTDISCO_ESTORAGE` (the database could not be
/// opened; the message is the store's).
///
/// # Safety
/// The string arguments are NULL or NUL-terminated and readable; `out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iotdisco_open(
    registry_jid: *const c_char,
    db_path: *const c_char,
    options: *const c_char,
    out: *mut *mut iotdisco_registry,
) -> c_int {
    if out.is_null() {
        set_error("out is NULL");
        return IOTDISCO_EINVAL as c_int;
    }
    // SAFETY: `out` is not NULL and the caller promises it is writable.
    unsafe { out.write(std::ptr::null_mut()) };
    guard(
        || {
            // SAFETY: the caller promises NUL-terminated strings or NULL.
            let jid = unsafe { utf8(registry_jid, "registry_jid") }?
                .ok_or_else(|| einval("registry_jid is NULL"))?;
            BareJid::parse(jid).map_err(|e| einval(format!("registry_jid: {e}")))?;
            // SAFETY: as above.
            let options = unsafe { utf8(options, "options") }?;
            let o = Options::parse(options).map_err(einval)?;
            let registry = if db_path.is_null() {
                Registry::new(o.config)
            } else {
                // SAFETY: not NULL; the caller promises a NUL-terminated string.
                let path = path_of(unsafe { CStr::from_ptr(db_path) })?;
                Registry::open_with(&path, o.config, o.durability).map_err(|e| Report {
                    status: IOTDISCO_ESTORAGE,
                    message: format!("cannot open the database at {}: {e}", path.display()),
                })?
            };
            let engine = Engine::new(jid, registry, o.engine)
                .map_err(|e| einval(format!("registry_jid: {e}")))?;
            let reg = Box::new(iotdisco_registry {
                engine,
                poisoned: AtomicBool::new(false),
                outboxes: Mutex::new(Vec::new()),
            });
            // SAFETY: checked writable above.
            unsafe { out.write(Box::into_raw(reg)) };
            Ok(IOTDISCO_OK)
        },
        || {},
    )
}

/// A database path from C bytes (any bytes on Unix, UTF-8 elsewhere).
fn path_of(c: &CStr) -> Result<PathBuf, Report> {
    if c.is_empty() {
        return Err(einval("db_path is empty (NULL means in memory)"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(c.to_bytes())))
    }
    #[cfg(not(unix))]
    {
        c.to_str()
            .map(PathBuf::from)
            .map_err(|_| einval("db_path is not UTF-8"))
    }
}

/// Flushes the registry's database to disk and frees the registry. NULL is a
/// no-op. Works on a poisoned registry too. The caller must make sure no other
/// thread is inside a call on `reg` and none will start one: any use of `reg`
/// after this call is undefined behaviour. A failed flush is reported by
/// `iotdisco_last_error()` (empty after a clean close); the registry is freed
/// either way.
///
/// # Safety
/// `reg` is NULL or a registry from `iotdisco_open` not yet closed, and no other
/// call on it is running or will run.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iotdisco_close(reg: *mut iotdisco_registry) {
    if reg.is_null() {
        clear_error();
        return;
    }
    // SAFETY: not NULL; the caller hands back ownership of a registry made by
    // `Box::into_raw` in `iotdisco_open`, used by nobody else from now on.
    let reg = unsafe { Box::from_raw(reg) };
    guard(
        move || {
            let flushed = reg.engine.registry().flush();
            drop(reg);
            flushed.map(|()| IOTDISCO_OK).map_err(|e| Report {
                status: IOTDISCO_ESTORAGE,
                message: format!("the final flush failed: {e}"),
            })
        },
        || {},
    );
}

/// Handles one stanza received by the server: `len` bytes at `stanza` (one
/// complete `<iq/>`, UTF-8, not NUL-terminated, `from` stamped by the server),
/// at `now_ms` on the host's clock (any monotonic milliseconds; the same clock
/// for every call). Calls `send(user, ..)` once for every stanza to send (the
/// reply, notifications to things, the owner's reply to a finished disown), in
/// order, before returning. `stanza` is read during the call only.
///
/// Returns `IOTDISCO_OK` (handled; a malformed discovery request was answered
/// with `bad-request`, a stanza over `max_stanza_bytes` too), `IOTDISCO_NOT_MINE`
/// (not for the registry, nothing sent; `len` 0 is this), `IOTDISCO_DROPPED` (an
/// unaddressable iq: nothing sent), `IOTDISCO_ESTORAGE` (the store failed: the
/// `internal-server-error` reply was sent), `IOTDISCO_EINVAL` (NULL `reg` or
/// `send`, NULL `stanza` with `len` > 0) or `IOTDISCO_EPANIC`.
///
/// # Safety
/// `reg` is NULL or a live registry; `stanza` is NULL or readable for `len`
/// bytes; `send` is NULL or a function with the `iotdisco_send_fn` contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iotdisco_handle(
    reg: *mut iotdisco_registry,
    stanza: *const c_char,
    len: usize,
    now_ms: u64,
    send: iotdisco_send_fn,
    user: *mut c_void,
) -> c_int {
    let body = |reg: &iotdisco_registry| {
        let send = callback(send)?;
        let bytes: &[u8] = if len == 0 {
            &[]
        } else if stanza.is_null() {
            return Err(einval("stanza is NULL but len is not 0"));
        } else if len > isize::MAX as usize {
            return Err(einval("len is larger than any buffer"));
        } else {
            // SAFETY: not NULL, at most isize::MAX bytes, and the caller
            // promises `len` readable bytes that outlive the call.
            unsafe { std::slice::from_raw_parts(stanza.cast::<u8>(), len) }
        };
        let mut out = reg.outbox();
        match reg.engine.handle(bytes, now_ms, &mut out) {
            Handled::Done => {
                deliver(reg, out, send, user);
                Ok(IOTDISCO_OK)
            }
            Handled::NotMine => {
                reg.recycle(out);
                Ok(IOTDISCO_NOT_MINE)
            }
            Handled::Dropped(why) => {
                reg.recycle(out);
                Err(Report {
                    status: IOTDISCO_DROPPED,
                    message: format!("dropped an unaddressable iq: {why}"),
                })
            }
            Handled::StoreFailed(why) => {
                // The internal-server-error reply still goes out.
                deliver(reg, out, send, user);
                Err(Report {
                    status: IOTDISCO_ESTORAGE,
                    message: format!(
                        "the store failed (the reply says internal-server-error): {why}"
                    ),
                })
            }
        }
    };
    // SAFETY: the caller promises `reg` is NULL or live.
    unsafe { with_registry(reg, body) }
}

/// Tells the registry that `full_jid` (e.g. "thing@example.org/imc"; a bare JID
/// means every resource) became available (`available` non-zero) or unavailable
/// (0) at `now_ms`. A thing that goes away while a disown waits for its
/// acknowledgement fails that disown: the owner's `not-allowed` reply is passed
/// to `send` before the call returns. A thing that becomes available gets the
/// `claimed` / `removed` notifications it missed while offline (passed to
/// `send`). Feed the presence of every JID the server sees come and go (things
/// that are offline cannot be disowned, and are not sent notifications they
/// would miss). `full_jid` is read during the call only.
///
/// Returns `IOTDISCO_OK`, `IOTDISCO_EINVAL` (NULL `reg`, `full_jid` or `send`,
/// not UTF-8, not a JID) or `IOTDISCO_EPANIC`.
///
/// # Safety
/// `reg` is NULL or a live registry; `full_jid` is NULL or NUL-terminated; `send`
/// is NULL or a function with the `iotdisco_send_fn` contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iotdisco_presence(
    reg: *mut iotdisco_registry,
    full_jid: *const c_char,
    available: c_int,
    now_ms: u64,
    send: iotdisco_send_fn,
    user: *mut c_void,
) -> c_int {
    let body = |reg: &iotdisco_registry| {
        let send = callback(send)?;
        // SAFETY: the caller promises NULL or a NUL-terminated string.
        let jid =
            unsafe { utf8(full_jid, "full_jid") }?.ok_or_else(|| einval("full_jid is NULL"))?;
        let mut out = reg.outbox();
        match reg.engine.presence(jid, available != 0, now_ms, &mut out) {
            Ok(()) => {
                deliver(reg, out, send, user);
                Ok(IOTDISCO_OK)
            }
            Err(e) => {
                reg.recycle(out);
                Err(einval(format!("full_jid: {e}")))
            }
        }
    };
    // SAFETY: the caller promises `reg` is NULL or live.
    unsafe { with_registry(reg, body) }
}

/// Tells the registry it no longer learns the presence of `jid`'s bare JID (the
/// thing unsubscribed from the registry, so no `unavailable` will come): its
/// presence becomes unknown again. Unlike `iotdisco_presence(.., 0, ..)` this
/// fails no waiting disown; notifications go to the last known full JID.
/// Nothing is sent. `jid` is read during the call only.
///
/// Returns `IOTDISCO_OK`, `IOTDISCO_EINVAL` (NULL `reg` or `jid`, not UTF-8,
/// not a JID) or `IOTDISCO_EPANIC`.
///
/// # Safety
/// `reg` is NULL or a live registry; `jid` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iotdisco_forget_presence(
    reg: *mut iotdisco_registry,
    jid: *const c_char,
) -> c_int {
    let body = |reg: &iotdisco_registry| {
        // SAFETY: the caller promises NULL or a NUL-terminated string.
        let jid = unsafe { utf8(jid, "jid") }?.ok_or_else(|| einval("jid is NULL"))?;
        reg.engine
            .forget_presence(jid)
            .map(|()| IOTDISCO_OK)
            .map_err(|e| einval(format!("jid: {e}")))
    };
    // SAFETY: the caller promises `reg` is NULL or live.
    unsafe { with_registry(reg, body) }
}

/// Tells the registry the host's clock reached `now_ms`: disowns whose thing
/// stayed silent past `disown_timeout_ms` fail (each owner's `not-allowed` reply
/// is passed to `send`), notifications nobody answered are forgotten. Call it at
/// the time `iotdisco_next_deadline` gives (calling it more often is harmless).
///
/// Returns `IOTDISCO_OK`, `IOTDISCO_EINVAL` (NULL `reg` or `send`) or
/// `IOTDISCO_EPANIC`.
///
/// # Safety
/// `reg` is NULL or a live registry; `send` is NULL or a function with the
/// `iotdisco_send_fn` contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iotdisco_tick(
    reg: *mut iotdisco_registry,
    now_ms: u64,
    send: iotdisco_send_fn,
    user: *mut c_void,
) -> c_int {
    let body = |reg: &iotdisco_registry| {
        let send = callback(send)?;
        let mut out = reg.outbox();
        reg.engine.tick(now_ms, &mut out);
        deliver(reg, out, send, user);
        Ok(IOTDISCO_OK)
    };
    // SAFETY: the caller promises `reg` is NULL or live.
    unsafe { with_registry(reg, body) }
}

/// Writes to `*out` when `iotdisco_tick` should next be called (on the clock of
/// the `now_ms` arguments), or `IOTDISCO_NO_DEADLINE` when nothing waits. Any
/// `iotdisco_handle`, `iotdisco_presence` or `iotdisco_tick` may move it: ask
/// again after each (a server with a timer wheel can instead tick every second).
///
/// Returns `IOTDISCO_OK`, `IOTDISCO_EINVAL` (NULL `reg` or `out`; `*out` is then
/// untouched) or `IOTDISCO_EPANIC`.
///
/// # Safety
/// `reg` is NULL or a live registry; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn iotdisco_next_deadline(
    reg: *const iotdisco_registry,
    out: *mut u64,
) -> c_int {
    let body = |reg: &iotdisco_registry| {
        if out.is_null() {
            return Err(einval("out is NULL"));
        }
        let deadline = reg.engine.next_deadline().unwrap_or(IOTDISCO_NO_DEADLINE);
        // SAFETY: not NULL; the caller promises it is writable.
        unsafe { out.write(deadline) };
        Ok(IOTDISCO_OK)
    };
    // SAFETY: the caller promises `reg` is NULL or live.
    unsafe { with_registry(reg, body) }
}

/// Why the last `iotdisco_*` call on this thread did not return `IOTDISCO_OK`:
/// a NUL-terminated English message, "" after a call that succeeded. Never
/// NULL. The string is owned by the library, per thread: do not free it; it
/// stays valid until the next `iotdisco_*` call on the same thread (copy it to
/// keep it). Calling this function does not change it.
#[unsafe(no_mangle)]
pub extern "C" fn iotdisco_last_error() -> *const c_char {
    catch_unwind(|| {
        LAST_ERROR
            .try_with(|e| {
                let e = e.borrow();
                if e.is_empty() {
                    c"".as_ptr()
                } else {
                    // Points into the thread's buffer, which is only changed
                    // by the next call on this thread.
                    e.as_ptr().cast::<c_char>()
                }
            })
            .unwrap_or(c"".as_ptr())
    })
    .unwrap_or(c"".as_ptr())
}

/// The library version, e.g. "0.1.0": a static NUL-terminated string owned by
/// the library (never freed, never NULL).
#[unsafe(no_mangle)]
pub extern "C" fn iotdisco_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("the version holds a NUL"),
        };
    VERSION.as_ptr()
}

#[cfg(test)]
mod tests {
    //! The panic paths, which no C caller can trigger on purpose.

    use super::*;

    fn last_error() -> String {
        // SAFETY: iotdisco_last_error never returns NULL and the string is
        // NUL-terminated.
        unsafe { CStr::from_ptr(iotdisco_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    fn open() -> *mut iotdisco_registry {
        let mut reg = std::ptr::null_mut();
        // SAFETY: valid strings and out pointer.
        let rc = unsafe {
            iotdisco_open(
                c"r.example".as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                &mut reg,
            )
        };
        assert_eq!(rc, IOTDISCO_OK as c_int, "{}", last_error());
        reg
    }

    unsafe extern "C" fn count(user: *mut c_void, _stanza: *const c_char, _len: usize) {
        // SAFETY: the tests pass a `usize` counter as `user`.
        unsafe { *user.cast::<usize>() += 1 };
    }

    #[test]
    fn a_panic_is_reported_and_poisons_the_registry() {
        let reg = open();
        // SAFETY: `reg` is live.
        let rc = unsafe { with_registry(reg, |_| panic!("boom {}", 42)) };
        assert_eq!(rc, IOTDISCO_EPANIC as c_int);
        assert_eq!(last_error(), "internal panic: boom 42");
        // Every later call reports the poison, without running the engine.
        let mut sent = 0usize;
        let disco = b"<iq type='get' from='a@b/c' to='r.example' id='1'>\
            <query xmlns='http://jabber.org/protocol/disco#info'/></iq>";
        // SAFETY: live registry, valid buffer and callback.
        let rc = unsafe {
            iotdisco_handle(
                reg,
                disco.as_ptr().cast(),
                disco.len(),
                0,
                Some(count),
                (&raw mut sent).cast(),
            )
        };
        assert_eq!(rc, IOTDISCO_EPANIC as c_int);
        assert_eq!(sent, 0);
        assert!(last_error().contains("poisoned"), "{}", last_error());
        let mut deadline = 0;
        // SAFETY: live registry, writable out.
        let rc = unsafe { iotdisco_next_deadline(reg, &mut deadline) };
        assert_eq!(rc, IOTDISCO_EPANIC as c_int);
        // Close still works.
        // SAFETY: live registry, closed once.
        unsafe { iotdisco_close(reg) };
        assert_eq!(last_error(), "");
    }

    #[test]
    fn a_panic_with_a_string_payload_and_without_a_registry() {
        let rc = guard(|| std::panic::panic_any(String::from("owned")), || {});
        assert_eq!(rc, IOTDISCO_EPANIC as c_int);
        assert_eq!(last_error(), "internal panic: owned");
        let rc = guard(|| std::panic::panic_any(7u8), || {});
        assert_eq!(rc, IOTDISCO_EPANIC as c_int);
        assert_eq!(last_error(), "internal panic: (no message)");
        assert_eq!(guard(|| Ok(IOTDISCO_OK), || {}), 0);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn errors_are_per_thread_and_never_hold_nul() {
        set_error("a\0b");
        assert_eq!(last_error(), "a?b");
        std::thread::spawn(|| assert_eq!(last_error(), ""))
            .join()
            .unwrap();
        assert_eq!(last_error(), "a?b");
    }

    #[test]
    fn the_stanza_pool_is_bounded() {
        let reg = open();
        // SAFETY: live registry, closed at the end of the test.
        let r = unsafe { &*reg };
        let outs: Vec<Outbox> = (0..POOL + 4).map(|_| r.outbox()).collect();
        for o in outs {
            r.recycle(o);
        }
        assert_eq!(r.outboxes.lock().unwrap().len(), POOL);
        // SAFETY: live registry, closed once.
        unsafe { iotdisco_close(reg) };
    }

    #[test]
    fn the_version_is_the_crate_version() {
        // SAFETY: static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(iotdisco_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
