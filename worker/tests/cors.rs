//! The Packit dashboard is a page of another origin: every answer of the API carries the CORS
//! header it needs, whatever the answer is (Packit Service answers every origin the same way).
//! The real service process, asked as a browser on the dashboard's origin asks it.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use support::stack::Stack;

const ORIGIN: &str = "https://dashboard.packit.dev";

/// What is asked, how (method, path, body), and the status it is answered with.
type Case = (&'static str, Method, String, Option<Vec<u8>>, StatusCode);

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_allows_the_dashboards_origin() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let stack = Stack::start().await;
        let _service = stack.spawn(&[]).await;
        let api = stack.api();
        // A connection of its own for each request: the server closes the one whose body went
        // over the limit, and a pooled client would send the next request on it.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("a client");
        let cases: Vec<Case> = vec![
            // Packit's lists answer 206, and so do ours.
            (
                "a list",
                Method::GET,
                "/api/koji-builds".into(),
                None,
                StatusCode::PARTIAL_CONTENT,
            ),
            (
                "the status page",
                Method::GET,
                "/".into(),
                None,
                StatusCode::OK,
            ),
            (
                "an unknown path",
                Method::GET,
                "/api/no-such-endpoint".into(),
                None,
                StatusCode::NOT_FOUND,
            ),
            (
                "an unknown id",
                Method::GET,
                "/api/koji-builds/999999".into(),
                None,
                StatusCode::NOT_FOUND,
            ),
            (
                "a bad parameter",
                Method::GET,
                "/api/koji-builds?page=first".into(),
                None,
                StatusCode::BAD_REQUEST,
            ),
            (
                "a webhook without JSON",
                Method::POST,
                "/api/testing-farm/results".into(),
                Some(b"not json".to_vec()),
                StatusCode::BAD_REQUEST,
            ),
            (
                "a body over the limit",
                Method::POST,
                "/api/testing-farm/results".into(),
                Some(vec![b'x'; 64 * 1024]),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                "an admin action (no admin token is configured)",
                Method::POST,
                "/api/events/replay".into(),
                None,
                StatusCode::FORBIDDEN,
            ),
        ];
        for (what, method, path, body, status) in cases {
            let mut request = http
                .request(method, format!("{api}{path}"))
                .header("Origin", ORIGIN);
            if let Some(body) = body {
                request = request
                    .header("Content-Type", "application/json")
                    .body(body);
            }
            let answer = request.send().await.expect("the API answers");
            assert_eq!(answer.status(), status, "{what}: {path}");
            assert_eq!(
                answer
                    .headers()
                    .get("access-control-allow-origin")
                    .and_then(|v| v.to_str().ok()),
                Some("*"),
                "{what}: {path}: {:?}",
                answer.headers()
            );
        }

        // The browser's preflight before a request it may not send unasked.
        let preflight = http
            .request(Method::OPTIONS, format!("{api}/api/koji-builds"))
            .header("Origin", ORIGIN)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
            .await
            .expect("the API answers");
        assert!(preflight.status().is_success(), "{preflight:?}");
        let headers = preflight.headers();
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert_eq!(headers["access-control-allow-methods"], "*");
        assert_eq!(headers["access-control-allow-headers"], "*");
    })
    .await
    .expect("test timed out");
}
