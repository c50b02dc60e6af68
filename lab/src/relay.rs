//! The lab's `slow-link`: this kernel has no netem (`sch_netem`), so latency is made in user
//! space, on the wire. In the lab's switch namespace the machine's underlay port leaves the
//! bridge; a TAP device takes its place there, and [`run`] carries every Ethernet frame between
//! the port and the TAP device, each held for the delay. Nothing in the machine changes: ZeroTier
//! binds its UDP sockets to the underlay interface (`SO_BINDTODEVICE`), so no route inside the
//! machine could divert them, but on the wire every protocol is delayed alike (ZeroTier's UDP,
//! yggdrasil's TCP, ARP). Both ends carry the kernel's virtio-net header with each frame, so a
//! segmentation-offloaded TCP burst or a checksum still to be filled in crosses as it would a
//! veth (without it such frames were too large for the bridge or failed their checksum, and
//! yggdrasil's TCP stalled). Bounded: at most [`MAX_QUEUED`] frames and [`MAX_QUEUED_BYTES`] wait
//! in each direction; more are dropped, as a full link drops them.

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Frames held at most, per direction.
const MAX_QUEUED: usize = 4096;
/// Bytes held at most, per direction (an offloaded frame can be 64 KiB).
const MAX_QUEUED_BYTES: usize = 16 << 20;
/// How often the port's reader looks whether the TAP side has ended.
const RECV_TICK: Duration = Duration::from_millis(500);
/// `PACKET_VNET_HDR` (linux/if_packet.h): frames on the packet socket carry a virtio-net header.
const PACKET_VNET_HDR: libc::c_int = 15;
/// Largest frame with its header: an offloaded burst is at most 64 KiB.
const BUF: usize = 65536 + 64;

/// The TAP device that stands in the bridge for machine `index`'s underlay port.
pub fn tap_name(index: usize) -> String {
    format!("slow{index}")
}

/// Frames waiting with their due time.
#[derive(Default)]
struct Pending {
    frames: VecDeque<(Instant, Vec<u8>)>,
    /// Their bytes.
    bytes: usize,
    /// The reader has finished.
    closed: bool,
}

/// One direction: frames queued by a reader, written by a thread when due.
struct Line {
    q: Mutex<Pending>,
    cv: Condvar,
}

impl Line {
    fn new() -> Arc<Line> {
        Arc::new(Line {
            q: Mutex::new(Pending::default()),
            cv: Condvar::new(),
        })
    }

    fn push(&self, frame: &[u8], due: Instant) {
        let mut g = self.q.lock().unwrap_or_else(|p| p.into_inner());
        if g.frames.len() < MAX_QUEUED && g.bytes + frame.len() <= MAX_QUEUED_BYTES {
            g.bytes += frame.len();
            g.frames.push_back((due, frame.to_vec()));
        }
        drop(g);
        self.cv.notify_all();
    }

    fn close(&self) {
        self.q.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        self.cv.notify_all();
    }

    /// Writes each frame when due until closed; a frame the far side refuses is lost, as on a
    /// real link.
    fn drain(&self, mut write: impl FnMut(&[u8])) {
        loop {
            let mut g = self.q.lock().unwrap_or_else(|p| p.into_inner());
            while g.frames.is_empty() && !g.closed {
                g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
            }
            let Some((due, frame)) = g.frames.pop_front() else {
                return;
            };
            g.bytes -= frame.len();
            drop(g);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            write(&frame);
        }
    }
}

/// Carries frames between the underlay port `port` and the TAP device `tap` (both in the current
/// network namespace, made by `lab fault <m> slow-link`), each direction delayed by `each_way`,
/// until either goes away (the port's reader looks every [`RECV_TICK`] whether the TAP side has
/// ended).
pub fn run(port: &str, tap: &str, each_way: Duration) -> io::Result<()> {
    // The port first: the TAP device has a carrier (what `lab fault` waits for) only once both
    // are open.
    let sock = Arc::new(packet_socket(port)?);
    let tap = Arc::new(open_tap(tap)?);
    let tap_gone = Arc::new(AtomicBool::new(false));
    let (to_machine, from_machine) = (Line::new(), Line::new());
    let mut threads = Vec::new();
    {
        let (line, sock) = (to_machine.clone(), sock.clone());
        threads.push(std::thread::spawn(move || {
            line.drain(|f| {
                // SAFETY: the buffer is valid for its length during the call.
                let _ = unsafe { libc::send(sock.as_raw_fd(), f.as_ptr().cast(), f.len(), 0) };
            })
        }));
    }
    {
        let (line, tap) = (from_machine.clone(), tap.clone());
        threads.push(std::thread::spawn(move || {
            line.drain(|f| {
                let _ = (&*tap).write(f);
            })
        }));
    }
    {
        // The bridge's frames for the machine.
        let (line, tap, gone) = (to_machine.clone(), tap.clone(), tap_gone.clone());
        threads.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; BUF];
            loop {
                match (&*tap).read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => line.push(&buf[..n], Instant::now() + each_way),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            line.close();
            gone.store(true, Ordering::SeqCst);
        }));
    }
    // The machine's frames, on this thread: its port also shows the frames sent to the machine
    // (outgoing), which are left out.
    let mut buf = vec![0u8; BUF];
    let result = loop {
        // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: buffer and address are valid for their lengths during the call.
        let n = unsafe {
            libc::recvfrom(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                // The receive tick: go on unless the TAP side has ended.
                Some(libc::EAGAIN) if !tap_gone.load(Ordering::SeqCst) => continue,
                Some(libc::EAGAIN) => break Ok(()),
                // One frame the kernel cannot describe in a virtio-net header: lost, as a link
                // may lose one.
                Some(libc::EINVAL) | Some(libc::EMSGSIZE) => continue,
                // The port went away (`lab heal`, `lab down`): done.
                Some(libc::ENETDOWN) | Some(libc::ENODEV) | Some(libc::ENXIO) => break Ok(()),
                _ => break Err(e),
            }
        }
        if from.sll_pkttype == libc::PACKET_OUTGOING {
            continue;
        }
        from_machine.push(&buf[..n as usize], Instant::now() + each_way);
    };
    from_machine.close();
    to_machine.close();
    for t in threads.drain(..2) {
        let _ = t.join();
    }
    result
}

/// Opens the TAP device `name` (frames with a virtio-net header, without the protocol header).
fn open_tap(name: &str) -> io::Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "device name too long",
        ));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags =
        (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
    // SAFETY: TUNSETIFF reads the ifreq and writes the device's name back into it: it is lent
    // mutably for the call and outlives it; the descriptor is open.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(f)
}

/// A packet socket on interface `name` that sees and sends every frame, each with a virtio-net
/// header.
fn packet_socket(name: &str) -> io::Result<OwnedFd> {
    let all = (libc::ETH_P_ALL as u16).to_be();
    let c = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: c is a valid NUL-terminated string for the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    // Protocol 0: the socket sees nothing until it is bound to the port (with ETH_P_ALL), so no
    // frame of another interface is ever queued.
    // SAFETY: plain system call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let on: libc::c_int = 1;
    // SAFETY: PACKET_VNET_HDR reads a c_int of the given size, which outlives the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            PACKET_VNET_HDR,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sockaddr_ll is plain data; all zeroes is a valid value.
    let mut at: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    at.sll_family = libc::AF_PACKET as u16;
    at.sll_protocol = all;
    at.sll_ifindex = index as libc::c_int;
    // SAFETY: the address is valid for its size during the call.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&at as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let tick = libc::timeval {
        tv_sec: RECV_TICK.as_secs() as libc::time_t,
        tv_usec: RECV_TICK.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: SO_RCVTIMEO reads a timeval of the given size, which outlives the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tick as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}
