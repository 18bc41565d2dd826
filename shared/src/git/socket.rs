//! libgit2's TCP socket, with Nagle's algorithm off.
//!
//! libgit2 sends an HTTP request's headers and its body as two writes and never sets
//! `TCP_NODELAY`, so the body of every smart-HTTP POST (`git-upload-pack` on a fetch,
//! `git-receive-pack` on a push) waits for the server to acknowledge the headers. Servers delay
//! that acknowledgement (40 ms on Linux), so each fetch of a new commit paid ~44 ms doing nothing
//! (seen with `strace`: the two writes, then the wait; 56–60 ms per fetch against 36 ms for the
//! git CLI, whose curl sets `TCP_NODELAY`, as Go's net/http does for Flux). libgit2 has no option
//! for it, so Sluice registers its own socket stream (`git_stream_register`, libgit2's public
//! plug-in point for streams, which libgit2-sys does not bind). TLS is unchanged: libgit2's
//! OpenSSL stream opens its socket through the same registry, so https gets it too.
//!
//! The stream behaves as libgit2's own (`streams/socket.c`): every address of the host is tried,
//! the connect and each read and write are bounded by libgit2's timeouts (set through
//! [`super::set_network_timeouts`]), TCP keep-alive as libgit2 sets it, and the same error
//! messages, so [`super::classify`] reads them as before.
//!
//! The layout starts as libgit2's `git_socket_stream` (the stream, host, port, descriptor):
//! libgit2's SSH transport reads the descriptor from there to hand it to libssh2.
//!
//! Written here, not taken from a crate: no maintained crate binds libgit2's stream registry.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::io::{self, Read, Write};
use std::mem::ManuallyDrop;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// libgit2's `GIT_STREAM_VERSION`.
const STREAM_VERSION: c_int = 1;
/// libgit2's `GIT_STREAM_STANDARD`: plain TCP (TLS streams are built over it).
const STREAM_STANDARD: c_int = 1;
/// libgit2's `GIT_TIMEOUT` error code.
const GIT_TIMEOUT: c_int = -37;
const NO_SOCKET: RawFd = -1;

/// The connect and read/write timeouts, in milliseconds (0: the system's), as libgit2 keeps them.
static CONNECT_TIMEOUT_MS: AtomicI32 = AtomicI32::new(0);
static TIMEOUT_MS: AtomicI32 = AtomicI32::new(0);

/// Records the timeouts for streams opened from now on (libgit2 keeps its own copy too, for
/// libssh2).
pub(crate) fn set_timeouts(connect_ms: i32, read_write_ms: i32) {
    CONNECT_TIMEOUT_MS.store(connect_ms, Ordering::Relaxed);
    TIMEOUT_MS.store(read_write_ms, Ordering::Relaxed);
}

/// Makes every libgit2 connection of the process use this stream. Idempotent; called before
/// each remote operation, so no daemon has to remember it.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        libgit2_sys::init();
        let registration = Registration {
            version: STREAM_VERSION,
            init: Some(stream_new),
            wrap: None,
        };
        // SAFETY: libgit2 is initialised; it copies the registration, whose `init` has the
        // signature libgit2 declares.
        let rc = unsafe { git_stream_register(STREAM_STANDARD, &registration) };
        if rc != 0 {
            // libgit2's own socket still works, just with the delay: say so, go on.
            tracing::warn!(
                rc,
                "libgit2 refused Sluice's socket stream; git requests may be slower"
            );
        }
    });
}

/// libgit2's `git_stream` (`include/git2/sys/stream.h`). The two one-bit fields `encrypted` and
/// `proxy_support` share one `unsigned int`.
#[repr(C)]
struct GitStream {
    version: c_int,
    flags: c_uint,
    timeout: c_int,
    connect_timeout: c_int,
    connect: Option<unsafe extern "C" fn(*mut GitStream) -> c_int>,
    certificate: Option<unsafe extern "C" fn(*mut *mut c_void, *mut GitStream) -> c_int>,
    set_proxy: Option<unsafe extern "C" fn(*mut GitStream, *const c_void) -> c_int>,
    read: Option<unsafe extern "C" fn(*mut GitStream, *mut c_void, usize) -> isize>,
    write: Option<unsafe extern "C" fn(*mut GitStream, *const c_char, usize, c_int) -> isize>,
    close: Option<unsafe extern "C" fn(*mut GitStream) -> c_int>,
    free: Option<unsafe extern "C" fn(*mut GitStream)>,
}

/// libgit2's `git_stream_registration`.
#[repr(C)]
struct Registration {
    version: c_int,
    init: Option<unsafe extern "C" fn(*mut *mut GitStream, *const c_char, *const c_char) -> c_int>,
    wrap: Option<unsafe extern "C" fn(*mut *mut GitStream, *mut GitStream, *const c_char) -> c_int>,
}

unsafe extern "C" {
    fn git_stream_register(kind: c_int, registration: *const Registration) -> c_int;
}

/// The stream; its first four fields are laid out as libgit2's `git_socket_stream`.
#[repr(C)]
struct SocketStream {
    parent: GitStream,
    host: *mut c_char,
    port: *mut c_char,
    socket: c_int,
}

unsafe extern "C" fn stream_new(
    out: *mut *mut GitStream,
    host: *const c_char,
    port: *const c_char,
) -> c_int {
    if out.is_null() || host.is_null() || port.is_null() {
        return fail(-1, "no host or port to connect to");
    }
    // SAFETY: libgit2 passes NUL-terminated strings that live for this call; they are copied.
    let (host, port) = unsafe {
        (
            CStr::from_ptr(host).to_owned(),
            CStr::from_ptr(port).to_owned(),
        )
    };
    let stream = Box::new(SocketStream {
        parent: GitStream {
            version: STREAM_VERSION,
            flags: 0,
            timeout: TIMEOUT_MS.load(Ordering::Relaxed),
            connect_timeout: CONNECT_TIMEOUT_MS.load(Ordering::Relaxed),
            connect: Some(stream_connect),
            certificate: None,
            set_proxy: None,
            read: Some(stream_read),
            write: Some(stream_write),
            close: Some(stream_close),
            free: Some(stream_free),
        },
        host: host.into_raw(),
        port: port.into_raw(),
        socket: NO_SOCKET,
    });
    // SAFETY: `out` is libgit2's out-parameter; `parent` is the first field, so the pointers agree.
    unsafe { *out = Box::into_raw(stream).cast() };
    0
}

/// Sets libgit2's last error, as its own stream does, and returns `code`.
fn fail(code: c_int, message: &str) -> c_int {
    let message = CString::new(message.replace('\0', "")).unwrap_or_default();
    // SAFETY: a NUL-terminated string, copied by libgit2.
    unsafe {
        libgit2_sys::git_error_set_str(libgit2_sys::GIT_ERROR_NET as c_int, message.as_ptr())
    };
    code
}

fn millis(ms: c_int) -> Option<Duration> {
    u64::try_from(ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

/// Connects to the first address of the host that answers, as libgit2 does.
fn connect(
    host: &str,
    port: &str,
    connect_timeout: c_int,
    timeout: c_int,
) -> Result<TcpStream, (c_int, String)> {
    let port: u16 = port.parse().map_err(|_| {
        (
            -1,
            format!("failed to resolve address for {host}: invalid port {port:?}"),
        )
    })?;
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| (-1, format!("failed to resolve address for {host}: {e}")))?;
    let mut last = None;
    for addr in addrs {
        let attempt = match millis(connect_timeout) {
            Some(limit) => TcpStream::connect_timeout(&addr, limit),
            None => TcpStream::connect(addr),
        };
        match attempt {
            Ok(tcp) => {
                tcp.set_nodelay(true).ok();
                let keepalive = socket2::TcpKeepalive::new()
                    .with_time(Duration::from_secs(60))
                    .with_interval(Duration::from_secs(10))
                    .with_retries(3);
                socket2::SockRef::from(&tcp)
                    .set_tcp_keepalive(&keepalive)
                    .ok();
                let limit = millis(timeout);
                tcp.set_read_timeout(limit).ok();
                tcp.set_write_timeout(limit).ok();
                return Ok(tcp);
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err((
                    -1,
                    format!("failed to connect to {host}: Operation timed out"),
                ));
            }
            Err(e) => last = Some(e),
        }
    }
    Err((
        -1,
        match last {
            Some(e) => format!("failed to connect to {host}: {e}"),
            None => format!("failed to resolve address for {host}: no address"),
        },
    ))
}

unsafe extern "C" fn stream_connect(stream: *mut GitStream) -> c_int {
    // SAFETY: libgit2 passes back the stream `stream_new` made.
    let st = unsafe { &mut *stream.cast::<SocketStream>() };
    // SAFETY: set by `stream_new` from CStrings, freed only in `stream_free`.
    let (host, port) = unsafe { (CStr::from_ptr(st.host), CStr::from_ptr(st.port)) };
    let (host, port) = (host.to_string_lossy(), port.to_string_lossy());
    match connect(&host, &port, st.parent.connect_timeout, st.parent.timeout) {
        Ok(tcp) => {
            st.socket = tcp.into_raw_fd();
            0
        }
        Err((code, message)) => fail(code, &message),
    }
}

/// The connected socket, borrowed (closing stays with `stream_close`).
fn borrow(st: &SocketStream) -> Option<ManuallyDrop<TcpStream>> {
    // SAFETY: an open descriptor owned by this stream; ManuallyDrop never closes it.
    (st.socket != NO_SOCKET)
        .then(|| ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(st.socket) }))
}

/// A read's or write's result as libgit2 wants it, with libgit2's own messages.
fn io_result(result: io::Result<usize>, timed_out: &str, failed: &str) -> isize {
    match result {
        Ok(n) => n as isize,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            fail(GIT_TIMEOUT, timed_out) as isize
        }
        Err(e) => fail(-1, &format!("{failed}: {e}")) as isize,
    }
}

fn retry<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

unsafe extern "C" fn stream_read(stream: *mut GitStream, data: *mut c_void, len: usize) -> isize {
    // SAFETY: libgit2's stream and a buffer of `len` writable bytes.
    let (st, buf) = unsafe {
        (
            &*stream.cast::<SocketStream>(),
            std::slice::from_raw_parts_mut(data.cast::<u8>(), len),
        )
    };
    let Some(mut tcp) = borrow(st) else {
        return fail(-1, "could not read from socket: not connected") as isize;
    };
    io_result(
        retry(|| tcp.read(buf)),
        "could not read from socket: timed out",
        "error receiving data from socket",
    )
}

unsafe extern "C" fn stream_write(
    stream: *mut GitStream,
    data: *const c_char,
    len: usize,
    _flags: c_int,
) -> isize {
    // SAFETY: libgit2's stream and `len` readable bytes.
    let (st, buf) = unsafe {
        (
            &*stream.cast::<SocketStream>(),
            std::slice::from_raw_parts(data.cast::<u8>(), len),
        )
    };
    let Some(mut tcp) = borrow(st) else {
        return fail(-1, "could not write to socket: not connected") as isize;
    };
    io_result(
        retry(|| tcp.write(buf)),
        "could not write to socket: timed out",
        "error sending data to socket",
    )
}

unsafe extern "C" fn stream_close(stream: *mut GitStream) -> c_int {
    // SAFETY: libgit2's stream.
    let st = unsafe { &mut *stream.cast::<SocketStream>() };
    if st.socket != NO_SOCKET {
        // SAFETY: the descriptor is owned by this stream and closed exactly once here.
        drop(unsafe { TcpStream::from_raw_fd(st.socket) });
        st.socket = NO_SOCKET;
    }
    0
}

unsafe extern "C" fn stream_free(stream: *mut GitStream) {
    if stream.is_null() {
        return;
    }
    // SAFETY: made by `stream_new` with Box::into_raw; libgit2 frees it once.
    unsafe {
        stream_close(stream);
        let st = Box::from_raw(stream.cast::<SocketStream>());
        drop(CString::from_raw(st.host));
        drop(CString::from_raw(st.port));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn the_layout_is_libgit2s() {
        // git_stream: 4 ints, then 7 function pointers; git_socket_stream adds two pointers and
        // the descriptor.
        assert_eq!(std::mem::offset_of!(GitStream, connect), 16);
        assert_eq!(std::mem::size_of::<GitStream>(), 16 + 7 * 8);
        assert_eq!(std::mem::offset_of!(SocketStream, socket), 16 + 7 * 8 + 16);
    }

    #[test]
    fn connects_without_nagle_and_with_timeouts() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let tcp = connect("127.0.0.1", &port, 1000, 250).unwrap();
        assert!(tcp.nodelay().unwrap());
        // The kernel rounds the timeout up to its clock's tick.
        let read_timeout = tcp.read_timeout().unwrap().unwrap();
        assert!(
            read_timeout >= Duration::from_millis(250),
            "{read_timeout:?}"
        );
        let refused = {
            let closed = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = closed.local_addr().unwrap().port().to_string();
            drop(closed);
            connect("127.0.0.1", &port, 1000, 0).unwrap_err()
        };
        assert!(
            refused.1.starts_with("failed to connect to 127.0.0.1"),
            "{}",
            refused.1
        );
    }

    #[test]
    fn a_silent_server_times_a_read_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let mut stream: *mut GitStream = std::ptr::null_mut();
        let (host, port) = (
            CString::new("127.0.0.1").unwrap(),
            CString::new(port).unwrap(),
        );
        set_timeouts(1000, 100);
        unsafe {
            assert_eq!(stream_new(&mut stream, host.as_ptr(), port.as_ptr()), 0);
            assert_eq!(stream_connect(stream), 0);
            let mut buf = [0u8; 16];
            let n = stream_read(stream, buf.as_mut_ptr().cast(), buf.len());
            assert_eq!(n, GIT_TIMEOUT as isize);
            assert_eq!(stream_write(stream, c"hello".as_ptr(), 5, 0), 5);
            stream_free(stream);
        }
        set_timeouts(0, 0);
    }
}
