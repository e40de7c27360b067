//! What went wrong on the way to a server, read from an error's chain of causes, so every
//! client (the probes, Slack's Web API, `odorbot check`) names the same causes the same way.

use std::error::Error;

use tokio_rustls::rustls::Error as TlsError;

type Shared = std::sync::Arc<dyn Error + Send + Sync>;

/// The causes below `e`, opening the wrappers whose `source()` skips what they hold:
/// rustls' errors travel inside `std::io::Error`s, and the redis crate shares its causes
/// in an `Arc<dyn Error>`.
fn chain<'a>(e: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(e), |&e| {
        if let Some(shared) = e.downcast_ref::<Shared>() {
            Some(&**shared as &(dyn Error + 'static))
        } else if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner as &(dyn Error + 'static))
        } else {
            e.source()
        }
    })
}

/// The TLS error somewhere in `e`'s chain, if any, in a few words.
pub fn tls(e: &(dyn Error + 'static)) -> Option<String> {
    chain(e)
        .find_map(|e| e.downcast_ref::<TlsError>())
        .map(|tls| tls.to_string().chars().take(160).collect())
}

/// A refused, reset or unroutable connection somewhere in `e`'s chain, in a few words.
pub fn connection(e: &(dyn Error + 'static)) -> Option<&'static str> {
    use std::io::ErrorKind as K;
    chain(e)
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .find_map(|io| match io.kind() {
            K::ConnectionRefused => Some("connection refused"),
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Some("connection reset"),
            K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
                Some("host unreachable")
            }
            K::TimedOut => Some("timed out connecting"),
            _ => None,
        })
}

/// `e`'s cause for a person: TLS, the connection, or its own words.
pub fn describe(e: &(dyn Error + 'static)) -> String {
    if let Some(tls) = tls(e) {
        format!("TLS failed: {tls}")
    } else if let Some(conn) = connection(e) {
        conn.to_owned()
    } else {
        chain(e)
            .last()
            .map(|e| e.to_string().chars().take(160).collect())
            .unwrap_or_default()
    }
}
