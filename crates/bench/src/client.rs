//! A minimal HTTP/1.1 client over one keep-alive connection.
//!
//! The load generator shares the machine's cores with the server and the
//! database, so it must cost as little CPU per request as possible: no
//! connection pool, no header maps, one buffer reused for every response.
//! It speaks exactly what phonegate answers with (`Content-Length` bodies).

use std::{io, net::SocketAddr};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

/// One response: the status and the body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A keep-alive connection that reconnects when the server closed it.
#[derive(Debug)]
pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    buffer: Vec<u8>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            request: Vec::with_capacity(512),
            buffer: Vec::with_capacity(4096),
        }
    }

    /// `GET path` with extra headers.
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
        self.send("GET", path, headers, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&mut self, path: &str, body: &serde_json::Value) -> io::Result<Response> {
        let body = body.to_string();
        self.send("POST", path, &[], Some(("application/json", body.as_bytes())))
            .await
    }

    /// `POST path` with a form body.
    pub async fn post_form(&mut self, path: &str, body: &str) -> io::Result<Response> {
        self.send(
            "POST",
            path,
            &[],
            Some(("application/x-www-form-urlencoded", body.as_bytes())),
        )
        .await
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> io::Result<Response> {
        self.request.clear();
        self.request.extend_from_slice(method.as_bytes());
        self.request.push(b' ');
        self.request.extend_from_slice(path.as_bytes());
        self.request.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            self.request.extend_from_slice(name.as_bytes());
            self.request.extend_from_slice(b": ");
            self.request.extend_from_slice(value.as_bytes());
            self.request.extend_from_slice(b"\r\n");
        }
        if let Some((content_type, body)) = body {
            self.request.extend_from_slice(b"Content-Type: ");
            self.request.extend_from_slice(content_type.as_bytes());
            self.request
                .extend_from_slice(format!("\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
            self.request.extend_from_slice(body);
        } else {
            self.request.extend_from_slice(b"\r\n");
        }
        // A connection the server closed while idle fails on first use: one
        // retry on a fresh connection, as any keep-alive client does.
        match self.round_trip().await {
            Ok(response) => Ok(response),
            Err(_) if self.stream.is_none() => self.round_trip().await,
            Err(error) => Err(error),
        }
    }

    async fn round_trip(&mut self) -> io::Result<Response> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let result = self.exchange().await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self) -> io::Result<Response> {
        let stream = self.stream.as_mut().ok_or_else(|| io::Error::other("not connected"))?;
        stream.write_all(&self.request).await?;
        self.buffer.clear();
        let mut chunk = [0u8; 4096];
        loop {
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(head) = parsed.parse(&self.buffer).map_err(io::Error::other)? else {
                continue;
            };
            let status = parsed.code.unwrap_or(0);
            let length = parsed
                .headers
                .iter()
                .find(|header| header.name.eq_ignore_ascii_case("content-length"))
                .and_then(|header| std::str::from_utf8(header.value).ok()?.trim().parse::<usize>().ok())
                .ok_or_else(|| io::Error::other("a response without Content-Length"))?;
            let close = parsed.headers.iter().any(|header| {
                header.name.eq_ignore_ascii_case("connection") && header.value.eq_ignore_ascii_case(b"close")
            });
            while self.buffer.len() < head + length {
                let read = stream.read(&mut chunk).await?;
                if read == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
                }
                self.buffer.extend_from_slice(&chunk[..read]);
            }
            let body = self.buffer[head..head + length].to_vec();
            if close {
                self.stream = None;
            }
            return Ok(Response { status, body });
        }
    }
}
