//! The UDP sockets of nodes and jobs: bound with a receive buffer large enough for every
//! child's window at once, so that a burst of children does not overflow it (the kernel drops
//! what does not fit, and the protocol would then spend its time retransmitting).

use std::net::{SocketAddr, UdpSocket};

/// The receive buffer asked for: 64 children's windows of full datagrams, with the kernel's
/// per-datagram overhead.
pub const RECEIVE_BUFFER: usize = 8 << 20;

/// Binds `address` and grows the socket's receive buffer to [`RECEIVE_BUFFER`] where the
/// system allows (as root past `net.core.rmem_max`; otherwise up to it).
pub fn bind(address: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(address)?;
    grow_receive_buffer(&socket);
    Ok(socket)
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code, reason = "setsockopt has no safe wrapper in std; the call reads one int we own")]
fn grow_receive_buffer(socket: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let size = libc::c_int::try_from(RECEIVE_BUFFER).unwrap_or(libc::c_int::MAX);
    let fd = socket.as_raw_fd();
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: `fd` is an open socket owned by `socket` for the duration of the call, and the
        // option value points at a live `c_int` whose size is passed alongside.
        let set = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                std::ptr::from_ref(&size).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it, SO_RCVBUF is capped at rmem_max.
        if set == 0 {
            return;
        }
    }
}

/// Elsewhere the system's default buffer is kept.
#[cfg(not(target_os = "linux"))]
fn grow_receive_buffer(_socket: &UdpSocket) {}
