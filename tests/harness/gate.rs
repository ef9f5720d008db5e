//! A TCP pass-through on a fixed public port in front of a server's private port. `close()` stops
//! listening and cuts every open connection (clients then get "connection refused", as with a
//! stopped server); `open()` listens on the same port again. TLS passes through untouched.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::accept::Acceptor;

type Conns = Arc<Mutex<HashMap<u64, Vec<TcpStream>>>>;

pub struct Gate {
    public: SocketAddr,
    backend: SocketAddr,
    accept: Option<Acceptor>,
    conns: Conns,
    next_id: Arc<AtomicU64>,
}

impl Gate {
    /// Listens on a free port of 127.0.0.1 right away.
    pub fn new(backend: SocketAddr) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port for the gate");
        let public = listener.local_addr().expect("gate local addr");
        let mut g = Gate {
            public,
            backend,
            accept: None,
            conns: Arc::default(),
            next_id: Arc::default(),
        };
        g.serve(listener);
        g
    }

    pub fn port(&self) -> u16 {
        self.public.port()
    }

    pub fn is_open(&self) -> bool {
        self.accept.is_some()
    }

    pub fn open(&mut self) {
        if self.accept.is_some() {
            return;
        }
        // std sets SO_REUSEADDR, so TIME_WAIT sockets from before do not block the rebind; another
        // process grabbing the port in between would (retry briefly, then give up loudly).
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.public) {
                Ok(l) => break l,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => panic!("could not listen on {} again: {e}", self.public),
            }
        };
        self.serve(listener);
    }

    pub fn close(&mut self) {
        let Some(acceptor) = self.accept.take() else {
            return;
        };
        drop(acceptor);
        let conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(|e| e.into_inner()));
        for s in conns.values().flatten() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn serve(&mut self, listener: TcpListener) {
        let (backend, conns, ids) = (self.backend, self.conns.clone(), self.next_id.clone());
        self.accept = Some(Acceptor::spawn("lab-gate", listener, move |client| {
            let id = ids.fetch_add(1, Ordering::SeqCst);
            if let Err(e) = pipe(id, client, backend, &conns) {
                eprintln!("lab gate: connection to {backend} failed: {e}");
            }
        }));
    }
}

fn pipe(id: u64, client: TcpStream, backend: SocketAddr, conns: &Conns) -> io::Result<()> {
    let server = TcpStream::connect_timeout(&backend, Duration::from_secs(5))?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    conns
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, vec![client.try_clone()?, server.try_clone()?]);
    let done = Arc::new(AtomicU64::new(0));
    for (mut from, mut to) in [(client.try_clone()?, server.try_clone()?), (server, client)] {
        let (conns, done) = (conns.clone(), done.clone());
        std::thread::spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
            if done.fetch_add(1, Ordering::SeqCst) == 1 {
                conns.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            }
        });
    }
    Ok(())
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.close();
    }
}
