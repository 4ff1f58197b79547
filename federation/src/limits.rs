//! The bounds every HTTP listener puts on what a peer may send — gateway listeners and the
//! federation's API and Raft ports alike — and the one hyper server builder that applies them.

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;

/// Limits of one HTTP server.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// HTTP/1.1: a request head must arrive within this; an idle keep-alive connection waits
    /// at most this long for its next request. The connection is then closed.
    pub header_read_timeout: Duration,
    /// Largest request head: HTTP/1.1 answers 431 beyond it; HTTP/2's header list size.
    pub max_header_bytes: usize,
    /// HTTP/2 streams at once per connection.
    pub max_concurrent_streams: u32,
    /// HTTP/2 streams a client may open and reset before the server accepted them; beyond it
    /// the connection gets GOAWAY (rapid reset, CVE-2023-44487).
    pub max_pending_reset_streams: usize,
    /// HTTP/2 keep-alive ping interval, and how long a ping may wait for its answer.
    pub h2_keepalive: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_concurrent_streams: 256,
            max_pending_reset_streams: 20,
            h2_keepalive: Duration::from_secs(30),
        }
    }
}

impl ServerLimits {
    /// A server builder (HTTP/1.1 and HTTP/2 prior knowledge) with these limits.
    pub fn builder(&self) -> Builder<TokioExecutor> {
        let mut b = Builder::new(TokioExecutor::new());
        b.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(self.max_header_bytes.max(8192));
        b.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.max_concurrent_streams)
            .max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX))
            .max_pending_accept_reset_streams(self.max_pending_reset_streams)
            .keep_alive_interval(Some(self.h2_keepalive))
            .keep_alive_timeout(self.h2_keepalive);
        b
    }
}

/// Raises this process's soft limit on open files to its hard limit (as nginx's
/// `worker_rlimit_nofile` or Go's runtime do): every connection is a file, and the listener
/// limits above are meant to bind before the kernel's. Returns the soft limit now in force.
pub fn raise_open_files() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum)
        && cur < max
    {
        lim.current = Some(max);
        if setrlimit(Resource::Nofile, lim).is_err() {
            lim.current = Some(cur);
        }
    }
    lim.current
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{Resource, getrlimit};
        let now = super::raise_open_files();
        let lim = getrlimit(Resource::Nofile);
        assert_eq!(now, lim.current);
        assert_eq!(lim.current, lim.maximum);
    }
}
