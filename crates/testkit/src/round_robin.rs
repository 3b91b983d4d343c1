//! A loopback TCP load balancer for tests of many gateway instances: it accepts connections on
//! one address and hands each new connection to the next upstream in turn (round robin),
//! copying bytes both ways until either side closes. It balances per connection, not per
//! request: HTTP keep-alive sends every request of one connection to the same instance, so a
//! client that must alternate request by request opens a connection per request (or uses a
//! client without a connection pool). An upstream that refuses the connection (a stopped or
//! killed instance) is skipped for that connection, as a load balancer's health check would.
//!
//! Start it first and give its [`RoundRobin::url`] to every instance as `public_url` (the
//! endpoint they publish is then the balancer's), then [`RoundRobin::set_upstreams`]:
//!
//! ```no_run
//! # async fn example(instances: Vec<std::net::SocketAddr>) -> anyhow::Result<()> {
//! use opencharge_testkit::RoundRobin;
//! let balancer = RoundRobin::start().await?;
//! // ... start the instances with public_url = Some(balancer.url()) ...
//! balancer.set_upstreams(instances);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// What the balancer shares with its accept loop.
#[derive(Default)]
struct Shared {
    /// The instances, in turn order.
    upstreams: Vec<SocketAddr>,
    /// The index of the next upstream to try.
    next: usize,
    /// Connections handed to each upstream so far.
    handed: HashMap<SocketAddr, usize>,
}

/// A running round-robin TCP balancer on a loopback port; stops (with every connection it
/// carries) when dropped.
pub struct RoundRobin {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    accept: JoinHandle<()>,
}

impl RoundRobin {
    /// Binds a free loopback port with no upstream yet (connections are closed until
    /// [`RoundRobin::set_upstreams`]).
    pub async fn start() -> anyhow::Result<RoundRobin> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("bind the round-robin balancer")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(RoundRobin {
            addr,
            shared,
            accept,
        })
    }

    /// The balancer's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the public URL to give every instance.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The instances new connections go to, in turn order (replaces the earlier list).
    pub fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
        let mut shared = lock(&self.shared);
        shared.upstreams = upstreams;
        shared.next = 0;
    }

    /// How many connections each upstream was handed so far (upstreams never handed one are
    /// missing).
    pub fn connections(&self) -> HashMap<SocketAddr, usize> {
        lock(&self.shared).handed.clone()
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every carried connection.
        self.accept.abort();
    }
}

/// The shared state, even if a task panicked while holding it (every change is complete).
fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accepts connections and carries each one to an upstream.
async fn accept_loop(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    let mut connections = JoinSet::new();
    loop {
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        connections.spawn(async move {
            if let Some(upstream) = connect_next(&shared).await {
                carry(client, upstream).await;
            }
            // No upstream reachable: dropping the client closes its connection.
        });
    }
}

/// Connects to the next upstream in turn, skipping ones that refuse (each is tried once).
async fn connect_next(shared: &Mutex<Shared>) -> Option<TcpStream> {
    let count = lock(shared).upstreams.len();
    for _ in 0..count {
        let target = {
            let mut shared = lock(shared);
            if shared.upstreams.is_empty() {
                return None;
            }
            let index = shared.next % shared.upstreams.len();
            shared.next = index + 1;
            shared.upstreams[index]
        };
        if let Ok(stream) = TcpStream::connect(target).await {
            *lock(shared).handed.entry(target).or_default() += 1;
            return Some(stream);
        }
    }
    None
}

/// Copies bytes both ways until one side closes or fails.
async fn carry(mut client: TcpStream, mut upstream: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback server that answers every connection with its own name.
    async fn named(name: &'static str) -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket.write_all(name.as_bytes()).await;
            }
        });
        (addr, task)
    }

    async fn who(balancer: &RoundRobin) -> String {
        let mut socket = TcpStream::connect(balancer.addr()).await.unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn connections_go_to_each_upstream_in_turn_and_skip_a_dead_one() {
        let (a, _a) = named("a").await;
        let (b, b_task) = named("b").await;
        let (c, _c) = named("c").await;
        let balancer = RoundRobin::start().await.unwrap();
        // No upstream yet: the connection is closed without an answer.
        assert_eq!(who(&balancer).await, "");
        balancer.set_upstreams(vec![a, b, c]);
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(who(&balancer).await);
        }
        assert_eq!(seen, ["a", "b", "c", "a", "b", "c"]);
        // b stops (its listener closes): its turns go to the next instance.
        b_task.abort();
        let _ = b_task.await;
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(who(&balancer).await);
        }
        assert_eq!(seen, ["a", "c", "a", "c"]);
        let handed = balancer.connections();
        assert_eq!(
            (handed[&a], handed[&b], handed[&c]),
            (4, 2, 4),
            "{handed:?}"
        );
    }
}
