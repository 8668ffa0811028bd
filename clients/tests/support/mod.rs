//! A raw HTTP/1.1 server for answers the stand-ins never give, because no
//! real service should: a redirect to another host, a body larger than a
//! client's limit, a body that never ends.
#![allow(
    dead_code,
    reason = "each test crate uses a different part; #[expect] would fail in the others"
)]

pub mod child_env;

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the server answers to every request.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A status, headers, and a body sent with its `Content-Length`.
    Fixed {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A status and a chunked body (no `Content-Length`) that never ends.
    Endless { status: u16 },
}

impl Answer {
    /// `status` with `Location: location`, as a redirect is.
    pub fn redirect(status: u16, location: &str) -> Answer {
        Answer::Fixed {
            status,
            headers: vec![("Location".to_owned(), location.to_owned())],
            body: Vec::new(),
        }
    }

    /// 200 with a JSON body.
    pub fn json(body: &str) -> Answer {
        Answer::Fixed {
            status: 200,
            headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// 200 with a JSON string of `bytes` bytes or so: valid JSON, only too
    /// large.
    pub fn large_json(bytes: usize) -> Answer {
        let mut body = Vec::with_capacity(bytes + 2);
        body.push(b'"');
        body.resize(bytes + 1, b'a');
        body.push(b'"');
        Answer::Fixed {
            status: 200,
            headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
            body,
        }
    }
}

/// A running server on `127.0.0.1:0`; stops when dropped.
#[derive(Debug)]
pub struct RawServer {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl RawServer {
    pub async fn start(answer: Answer) -> RawServer {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a local port");
        let addr = listener.local_addr().expect("its address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let answer = answer.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    serve(socket, &answer, &log).await;
                });
            }
        });
        RawServer {
            addr,
            requests,
            task,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:<port>`, as errors name the host.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received: its head and body, as text.
    pub fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut socket: TcpStream, answer: &Answer, log: &Mutex<Vec<String>>) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    log.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(request);
    match answer {
        Answer::Fixed {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body).await;
            let _ = socket.shutdown().await;
        }
        Answer::Endless { status } => {
            let head = format!(
                "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'a'; 64 * 1024];
            let size = format!("{:x}\r\n", chunk.len());
            // Until the client hangs up.
            loop {
                if socket.write_all(size.as_bytes()).await.is_err()
                    || socket.write_all(&chunk).await.is_err()
                    || socket.write_all(b"\r\n").await.is_err()
                {
                    return;
                }
            }
        }
    }
}

/// The request's head and its body (by `Content-Length`).
async fn read_request(socket: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let mut buffer = [0_u8; 8192];
    let head_end = loop {
        let n = socket.read(&mut buffer).await.ok()?;
        if n == 0 {
            return None;
        }
        received.extend_from_slice(buffer.get(..n)?);
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(received.get(..head_end)?).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while received.len() < head_end + length {
        let n = socket.read(&mut buffer).await.ok()?;
        if n == 0 {
            break;
        }
        received.extend_from_slice(buffer.get(..n)?);
    }
    Some(String::from_utf8_lossy(&received).into_owned())
}
