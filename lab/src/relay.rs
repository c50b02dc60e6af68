//! The lab's `slow-link`: the kernel here has no netem, so latency is made in user space by a
//! TCP relay on the overlay's underlay path that holds every chunk for a fixed delay in each
//! direction (an RTT increase of twice the delay). Bounded: at most `MAX_CONNS` connections, and a
//! direction stops reading while `MAX_QUEUED` bytes wait, so memory stays bounded.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const MAX_CONNS: usize = 64;
const MAX_QUEUED: usize = 4 << 20;

/// Chunks waiting with their due time, bytes queued, and whether the reader has finished.
type Pending = (VecDeque<(Instant, Vec<u8>)>, usize, bool);

struct Queue {
    items: Mutex<Pending>,
    cv: Condvar,
}

fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let q = Arc::new(Queue {
        items: Mutex::new((VecDeque::new(), 0, false)),
        cv: Condvar::new(),
    });
    let qw = q.clone();
    let writer = std::thread::spawn(move || loop {
        let mut g = qw.items.lock().unwrap_or_else(|p| p.into_inner());
        while g.0.is_empty() && !g.2 {
            g = qw.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        let Some((due, chunk)) = g.0.pop_front() else {
            let _ = to.shutdown(Shutdown::Write);
            return;
        };
        g.1 -= chunk.len();
        drop(g);
        qw.cv.notify_all();
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if to.write_all(&chunk).is_err() {
            return;
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut g = q.items.lock().unwrap_or_else(|p| p.into_inner());
        while g.1 > MAX_QUEUED {
            g = q.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        g.0.push_back((Instant::now() + delay, buf[..n].to_vec()));
        g.1 += n;
        drop(g);
        q.cv.notify_all();
    }
    q.items.lock().unwrap_or_else(|p| p.into_inner()).2 = true;
    q.cv.notify_all();
    let _ = writer.join();
}

/// Accepts on `listen` and relays each connection to `to`, delaying both directions by `delay`.
/// Runs until killed.
pub fn run(listen: SocketAddr, to: SocketAddr, delay: Duration) -> std::io::Result<()> {
    let l = TcpListener::bind(listen)?;
    let live = Arc::new(AtomicUsize::new(0));
    for conn in l.incoming() {
        let Ok(a) = conn else { continue };
        if live.load(Ordering::SeqCst) >= MAX_CONNS {
            continue; // dropped: the peer retries
        }
        let Ok(b) = TcpStream::connect_timeout(&to, Duration::from_secs(5)) else {
            continue;
        };
        let _ = a.set_nodelay(true);
        let _ = b.set_nodelay(true);
        let live = live.clone();
        live.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            if let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) {
                let up = std::thread::spawn(move || pump(a2, b2, delay));
                pump(b, a, delay);
                let _ = up.join();
            }
            live.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}
