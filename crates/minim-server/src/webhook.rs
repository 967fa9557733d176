//! Alert webhooks: one JSON POST over plain HTTP/1.1 per alert, best effort (a failure is
//! logged at WARN; the alert record in the metadata store is the durable copy). Plain
//! `http://` only: point it at a local relay for TLS endpoints.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(5);

/// `http://host[:port]/path` -> (host:port, host, path).
fn split(url: &str) -> Option<(String, String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Some((addr, authority.to_owned(), path.to_owned()))
}

async fn send(url: &str, body: &serde_json::Value) -> Result<u16, String> {
    let (addr, host, path) = split(url).ok_or("not an http:// URL")?;
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: minim-alerts\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).await.map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "no HTTP status in the reply".to_owned())
}

/// Posts `body` to `url`; never fails the caller.
pub(crate) async fn post(url: String, body: serde_json::Value) {
    match tokio::time::timeout(TIMEOUT, send(&url, &body)).await {
        Ok(Ok(status)) if (200..300).contains(&status) => {}
        Ok(Ok(status)) => tracing::warn!(status, "alert webhook answered with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "alert webhook failed"),
        Err(_) => tracing::warn!("alert webhook timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split("http://hooks.local:9000/a/b"),
            Some((
                "hooks.local:9000".into(),
                "hooks.local:9000".into(),
                "/a/b".into()
            ))
        );
        assert_eq!(
            split("http://h"),
            Some(("h:80".into(), "h".into(), "/".into()))
        );
        assert_eq!(split("https://h/x"), None);
        assert_eq!(split("http://u:p@h/x"), None);
    }
}
