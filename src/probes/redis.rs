//! Redis over RESP2 with the three commands the runbook needs (`AUTH`, `INFO`, `SCAN`):
//! small enough to own, and it never sends `KEYS`.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{Limit, ProbeError, TIMEOUT_KEY};
use crate::domain::diagnostics::CacheStats;

/// Longest reply accepted (an `INFO` section is a few KiB).
const MAX_BULK: usize = 1024 * 1024;
/// `SCAN` calls made for one sample, whatever the keyspace size.
const MAX_SCAN_CALLS: usize = 20;

#[derive(Debug, PartialEq)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Resp>),
}

/// Where and how to reach Redis, from a `redis://[:password@]host:port[/db]` URL.
#[derive(Clone)]
pub struct Redis {
    addr: String,
    username: Option<String>,
    password: Option<SecretString>,
    db: Option<u32>,
    limit: Limit,
}

impl Redis {
    /// # Errors
    /// When the URL is not a usable `redis://` URL.
    pub fn new(url: &SecretString, timeout: Duration) -> Result<Self, ProbeError> {
        let bad = |why: &str| ProbeError::BadConfig {
            what: "Redis",
            key: "ODORBOT_REDIS_URL",
            why: why.into(),
        };
        let url = url::Url::parse(url.expose_secret()).map_err(|_| bad("not a URL"))?;
        let host = url.host_str().ok_or_else(|| bad("no host"))?;
        let addr = format!("{host}:{}", url.port().unwrap_or(6379));
        let db = match url.path().trim_start_matches('/') {
            "" => None,
            n => Some(n.parse().map_err(|_| bad("the database is not a number"))?),
        };
        Ok(Self {
            addr,
            username: (!url.username().is_empty()).then(|| url.username().to_owned()),
            password: url.password().map(|p| SecretString::from(p.to_owned())),
            db,
            limit: Limit::new(timeout, TIMEOUT_KEY),
        })
    }

    async fn connect(&self) -> Result<Conn, ProbeError> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(|_| ProbeError::Unreachable)?;
        let mut conn = Conn {
            stream: BufReader::new(stream),
        };
        if let Some(password) = &self.password {
            let mut args = vec!["AUTH".as_bytes()];
            if let Some(user) = &self.username {
                args.push(user.as_bytes());
            }
            args.push(password.expose_secret().as_bytes());
            match conn.call(&args).await? {
                Resp::Simple(_) => {}
                _ => return Err(ProbeError::Auth),
            }
        }
        if let Some(db) = self.db {
            conn.call(&[b"SELECT", db.to_string().as_bytes()]).await?;
        }
        Ok(conn)
    }

    /// Hits, misses, evictions and memory from `INFO`.
    ///
    /// # Errors
    /// A short reason.
    pub async fn stats(&self) -> Result<CacheStats, ProbeError> {
        let work = async {
            let mut conn = self.connect().await?;
            let stats = conn.info("stats").await?;
            let memory = conn.info("memory").await?;
            Ok::<_, ProbeError>((stats, memory))
        };
        let (stats, memory) = tokio::time::timeout(self.limit.after, work)
            .await
            .map_err(|_| self.limit.expired())??;
        let field = |text: &str, key: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
        };
        Ok(CacheStats {
            hits: field(&stats, "keyspace_hits")
                .ok_or_else(|| ProbeError::Protocol("INFO stats has no keyspace_hits".into()))?,
            misses: field(&stats, "keyspace_misses")
                .ok_or_else(|| ProbeError::Protocol("INFO stats has no keyspace_misses".into()))?,
            evicted: field(&stats, "evicted_keys").unwrap_or(0),
            expired: field(&stats, "expired_keys").unwrap_or(0),
            used_memory: field(&memory, "used_memory").unwrap_or(0),
            max_memory: field(&memory, "maxmemory").unwrap_or(0),
        })
    }

    /// Up to `limit` keys matching `pattern`, by `SCAN` with a bounded number of calls.
    ///
    /// # Errors
    /// A short reason.
    pub async fn sample_keys(
        &self,
        pattern: &str,
        limit: usize,
    ) -> Result<Vec<String>, ProbeError> {
        let work = async {
            let mut conn = self.connect().await?;
            let mut keys = Vec::new();
            let mut cursor = "0".to_owned();
            for _ in 0..MAX_SCAN_CALLS {
                let reply = conn
                    .call(&[
                        b"SCAN",
                        cursor.as_bytes(),
                        b"MATCH",
                        pattern.as_bytes(),
                        b"COUNT",
                        b"100",
                    ])
                    .await?;
                let Resp::Array(mut parts) = reply else {
                    return Err(ProbeError::Protocol("unexpected SCAN reply".into()));
                };
                let (Some(Resp::Array(batch)), Some(Resp::Bulk(Some(next)))) =
                    (parts.pop(), parts.pop())
                else {
                    return Err(ProbeError::Protocol("unexpected SCAN reply".into()));
                };
                keys.extend(batch.into_iter().filter_map(|k| match k {
                    Resp::Bulk(Some(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
                    _ => None,
                }));
                cursor = String::from_utf8_lossy(&next).into_owned();
                if keys.len() >= limit || cursor == "0" {
                    break;
                }
            }
            keys.truncate(limit);
            Ok(keys)
        };
        tokio::time::timeout(self.limit.after, work)
            .await
            .map_err(|_| self.limit.expired())?
    }
}

struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    async fn call(&mut self, args: &[&[u8]]) -> Result<Resp, ProbeError> {
        let mut frame = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            frame.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            frame.extend_from_slice(a);
            frame.extend_from_slice(b"\r\n");
        }
        self.stream
            .get_mut()
            .write_all(&frame)
            .await
            .map_err(|_| ProbeError::Protocol("connection lost".into()))?;
        match read_reply(&mut self.stream).await? {
            Resp::Error(e) if e.starts_with("WRONGPASS") || e.starts_with("NOAUTH") => {
                Err(ProbeError::Auth)
            }
            Resp::Error(e) => Err(ProbeError::Server {
                server: "Redis",
                message: e.chars().take(120).collect(),
            }),
            other => Ok(other),
        }
    }

    async fn info(&mut self, section: &str) -> Result<String, ProbeError> {
        match self.call(&[b"INFO", section.as_bytes()]).await? {
            Resp::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            _ => Err(ProbeError::Protocol("unexpected INFO reply".into())),
        }
    }
}

async fn read_line(r: &mut BufReader<TcpStream>) -> Result<String, ProbeError> {
    let mut line = String::new();
    let n = r
        .read_line(&mut line)
        .await
        .map_err(|_| ProbeError::Protocol("connection lost".into()))?;
    if n == 0 || !line.ends_with("\r\n") {
        return Err(ProbeError::Protocol("connection closed mid-reply".into()));
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

/// Reads one reply; arrays nest one level at most here (SCAN), which a loop handles
/// without recursion.
async fn read_reply(r: &mut BufReader<TcpStream>) -> Result<Resp, ProbeError> {
    let mut stack: Vec<(usize, Vec<Resp>)> = Vec::new();
    loop {
        let line = read_line(r).await?;
        let (kind, rest) = line
            .split_at_checked(1)
            .ok_or_else(|| ProbeError::Protocol("empty reply line".into()))?;
        let item = match kind {
            "+" => Resp::Simple(rest.to_owned()),
            "-" => Resp::Error(rest.to_owned()),
            ":" => Resp::Int(
                rest.parse()
                    .map_err(|_| ProbeError::Protocol("bad integer reply".into()))?,
            ),
            "$" => {
                let len: i64 = rest
                    .parse()
                    .map_err(|_| ProbeError::Protocol("bad bulk length".into()))?;
                if len < 0 {
                    Resp::Bulk(None)
                } else {
                    let len = usize::try_from(len)
                        .map_err(|_| ProbeError::Protocol("bad bulk length".into()))?;
                    if len > MAX_BULK {
                        return Err(ProbeError::Protocol("reply too large".into()));
                    }
                    let mut buf = vec![0; len + 2];
                    r.read_exact(&mut buf)
                        .await
                        .map_err(|_| ProbeError::Protocol("connection lost".into()))?;
                    buf.truncate(len);
                    Resp::Bulk(Some(buf))
                }
            }
            "*" => {
                let n: i64 = rest
                    .parse()
                    .map_err(|_| ProbeError::Protocol("bad array length".into()))?;
                if n <= 0 {
                    Resp::Array(Vec::new())
                } else {
                    if stack.len() > 4 || n > 100_000 {
                        return Err(ProbeError::Protocol("reply too deep or too large".into()));
                    }
                    stack.push((n as usize, Vec::new()));
                    continue;
                }
            }
            _ => return Err(ProbeError::Protocol("not a Redis reply".into())),
        };
        let mut item = item;
        loop {
            let Some((want, items)) = stack.last_mut() else {
                return Ok(item);
            };
            items.push(item);
            if items.len() < *want {
                break;
            }
            let (_, done) = stack.pop().expect("non-empty");
            item = Resp::Array(done);
        }
    }
}
