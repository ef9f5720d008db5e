//! A blocking accept loop on a thread of its own, for the lab's small servers (the notary gate,
//! the token issuer, the TSA): each connection goes to a handler. Dropping the [`Acceptor`] stops
//! it (a connection of its own wakes the blocking `accept()`), joins the thread and so closes the
//! listener.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Acceptor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Accepts on `listener` in a thread named `name`, handing each connection to `handle`.
    pub fn spawn(
        name: &str,
        listener: TcpListener,
        mut handle: impl FnMut(TcpStream) + Send + 'static,
    ) -> Acceptor {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{name}: local addr: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    handle(conn);
                }
            })
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Acceptor {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the blocking accept(); the thread then drops the listener
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
