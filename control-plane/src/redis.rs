//! A minimal Redis client (RESP2 over TCP): enough for the event stream and the bundle fan-out. Commands are sent as
//! arrays of bulk strings; replies are parsed fully before the next command.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Why a Redis call failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL is not `redis://host[:port][/db]`.
    #[error("REDIS_URL must look like redis://host:port")]
    Url,
    /// Connection or protocol failure: reconnect.
    #[error("redis connection: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered with an error.
    #[error("redis error: {0}")]
    Server(String),
    /// The reply did not parse.
    #[error("redis protocol error")]
    Protocol,
}

/// A parsed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Simple(String),
    /// `:1`.
    Integer(i64),
    /// `$n` bulk string, `None` for nil.
    Bulk(Option<Vec<u8>>),
    /// `*n` array, `None` for nil.
    Array(Option<Vec<Reply>>),
}

/// One connection.
#[derive(Debug)]
pub struct Connection {
    stream: BufReader<TcpStream>,
}

fn address(url: &str) -> Result<(String, Option<u32>), RedisError> {
    let rest = url.strip_prefix("redis://").ok_or(RedisError::Url)?;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let (host, db) = match rest.split_once('/') {
        Some((host, db)) if !db.is_empty() => {
            (host, Some(db.parse().map_err(|_| RedisError::Url)?))
        }
        Some((host, _)) => (host, None),
        None => (rest, None),
    };
    if host.is_empty() {
        return Err(RedisError::Url);
    }
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:6379")
    };
    Ok((host, db))
}

impl Connection {
    /// Connects to `url` (and selects its database).
    pub async fn open(url: &str) -> Result<Self, RedisError> {
        let (host, db) = address(url)?;
        let stream =
            tokio::time::timeout(std::time::Duration::from_secs(2), TcpStream::connect(host))
                .await
                .map_err(|_| RedisError::Io(std::io::Error::other("connect timed out")))??;
        let mut connection = Connection {
            stream: BufReader::new(stream),
        };
        if let Some(db) = db {
            connection.command(&["SELECT", &db.to_string()]).await?;
        }
        Ok(connection)
    }

    /// Sends one command and reads its reply; a server error is `Err(Server)`.
    pub async fn command(&mut self, args: &[&str]) -> Result<Reply, RedisError> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&request).await?;
        let reply = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            read_reply(&mut self.stream),
        )
        .await
        .map_err(|_| RedisError::Io(std::io::Error::other("reply timed out")))??;
        Ok(reply)
    }
}

impl Connection {
    /// Waits for the next pushed reply (pub/sub messages), however long that takes.
    pub async fn next_message(&mut self) -> Result<Reply, RedisError> {
        read_reply(&mut self.stream).await
    }
}

async fn read_line(stream: &mut BufReader<TcpStream>) -> Result<String, RedisError> {
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Err(RedisError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn read_reply(
    stream: &mut BufReader<TcpStream>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, RedisError>> + Send + '_>> {
    Box::pin(async move {
        let line = read_line(stream).await?;
        let (kind, rest) = line.split_at_checked(1).ok_or(RedisError::Protocol)?;
        match kind {
            "+" => Ok(Reply::Simple(rest.to_owned())),
            "-" => Err(RedisError::Server(rest.to_owned())),
            ":" => rest
                .parse()
                .map(Reply::Integer)
                .map_err(|_| RedisError::Protocol),
            "$" => {
                let length: i64 = rest.parse().map_err(|_| RedisError::Protocol)?;
                if length < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let mut data = vec![0u8; length as usize + 2];
                stream.read_exact(&mut data).await?;
                data.truncate(length as usize);
                Ok(Reply::Bulk(Some(data)))
            }
            "*" => {
                let count: i64 = rest.parse().map_err(|_| RedisError::Protocol)?;
                if count < 0 {
                    return Ok(Reply::Array(None));
                }
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(read_reply(stream).await?);
                }
                Ok(Reply::Array(Some(items)))
            }
            _ => Err(RedisError::Protocol),
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls() {
        assert_eq!(
            super::address("redis://r:6380/2").unwrap(),
            ("r:6380".into(), Some(2))
        );
        assert_eq!(
            super::address("redis://r").unwrap(),
            ("r:6379".into(), None)
        );
        assert!(super::address("http://r").is_err());
    }
}
