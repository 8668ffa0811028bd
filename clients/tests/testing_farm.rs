//! The Testing Farm client against the Testing Farm stand-in, over real HTTP.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clients::ClientError;
use clients::http::Timeouts;
use clients::standins::testing_farm::TestingFarmStandin;
use clients::testing_farm::{Submitted, TestingFarm, TestingFarmClient};
use secrecy::SecretString;
use serde_json::{Value, json};
use support::{Answer, RawServer};

const TOKEN: &str = "tf-api-token-0123456789";
const WEBHOOK_TOKEN: &str = "webhook-secret-9876543210";

/// A request like the ones Fedora CI sends (installability of a scratch build).
fn payload(webhook_url: &str) -> Value {
    json!({
        "test": {
            "tmt": {
                "url": "https://github.com/fedora-ci/installability-pipeline.git",
                "ref": "master"
            }
        },
        "environments": [{
            "arch": "x86_64",
            "os": { "compose": "Fedora-Rawhide" },
            "variables": { "KOJI_TASK_ID": "123014869" },
            "tmt": {
                "context": {
                    "distro": "fedora-rawhide",
                    "arch": "x86_64",
                    "trigger": "commit",
                    "initiator": "fedora-ci",
                    "dist-git-branch": "rawhide",
                    "deployment": "prod"
                }
            }
        }],
        "notification": { "webhook": { "url": webhook_url } }
    })
}

fn client(url: &str, token: Option<&str>, webhook_token: Option<&str>) -> TestingFarmClient {
    TestingFarmClient::new(
        url,
        token.map(SecretString::from),
        webhook_token.map(SecretString::from),
        Timeouts::default(),
    )
    .expect("a client")
}

async fn standin() -> TestingFarmStandin {
    TestingFarmStandin::start_with_token(TOKEN)
        .await
        .expect("the stand-in starts")
}

async fn submit(client: &TestingFarmClient) -> String {
    match client
        .submit(&payload("https://ci.example.org/api/testing-farm/results"))
        .await
        .expect("submitted")
    {
        Submitted::Request { id } => id,
        other => panic!("not submitted: {other:?}"),
    }
}

/// Neither token anywhere in what an error shows.
fn assert_no_secrets(text: &str) {
    assert!(!text.contains(TOKEN), "API token in {text:?}");
    assert!(!text.contains(WEBHOOK_TOKEN), "webhook token in {text:?}");
}

#[tokio::test]
async fn submit_returns_the_id_and_sends_the_webhook_token() {
    let tf = standin().await;
    let client = client(&tf.url(), Some(TOKEN), Some(WEBHOOK_TOKEN));
    assert!(!client.dry_run());

    let id = submit(&client).await;

    assert_eq!(tf.request_ids(), vec![id]);
    let sent = tf.requests();
    let mut expected = payload("https://ci.example.org/api/testing-farm/results");
    expected["notification"]["webhook"]["token"] = json!(WEBHOOK_TOKEN);
    assert_eq!(sent, vec![expected]);
}

#[tokio::test]
async fn submit_without_a_webhook_token_sends_the_payload_as_is() {
    let tf = standin().await;
    let client = client(&tf.url(), Some(TOKEN), None);
    submit(&client).await;
    assert_eq!(
        tf.requests(),
        vec![payload("https://ci.example.org/api/testing-farm/results")]
    );
}

#[tokio::test]
async fn get_reports_the_request_as_testing_farm_does() {
    let tf = standin().await;
    let id = submit(&client(&tf.url(), Some(TOKEN), None)).await;
    // Reads are anonymous: a dry-run client reads too.
    let reader = client(&tf.url(), None, None);

    let new = reader.get(&id).await.expect("the request");
    assert_eq!(new["id"], json!(id));
    assert_eq!(new["state"], json!("new"));
    assert_eq!(new["result"], Value::Null);

    assert!(tf.set_state(&id, "complete", Some("failed"), Some("2 tests failed")));
    let done = reader.get(&id).await.expect("the request");
    assert_eq!(done["state"], json!("complete"));
    assert_eq!(done["result"]["overall"], json!("failed"));
    assert_eq!(done["result"]["summary"], json!("2 tests failed"));
    assert_eq!(
        done["run"]["artifacts"],
        json!(format!("{}/artifacts/{id}", tf.url()))
    );
    assert_eq!(
        done["test"]["tmt"]["url"],
        json!("https://github.com/fedora-ci/installability-pipeline.git")
    );
    assert_eq!(
        done["environments_requested"][0]["os"]["compose"],
        json!("Fedora-Rawhide")
    );
}

#[tokio::test]
async fn get_of_an_unknown_request_is_permanent() {
    let tf = standin().await;
    let err = client(&tf.url(), None, None)
        .get("5a8b4c3e-0000-4000-8000-000000000000")
        .await
        .expect_err("unknown");
    match err {
        ClientError::Permanent { service, message } => {
            assert_eq!(service, "testing-farm");
            assert!(message.contains("404"), "{message}");
            assert!(message.contains("No such entity"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn cancel_has_nothing_more_to_do_whatever_the_request_became() {
    let tf = standin().await;
    let client = client(&tf.url(), Some(TOKEN), None);
    let running = submit(&client).await;
    let finished = submit(&client).await;
    tf.set_state(&running, "running", None, None);
    tf.set_state(&finished, "complete", Some("passed"), None);

    // 200: cancellation requested; Testing Farm's worker ends it later.
    assert_eq!(client.cancel(&running).await.expect("canceled"), None);
    assert_eq!(tf.state(&running).as_deref(), Some("cancel-requested"));
    // 204: being canceled.
    assert_eq!(client.cancel(&running).await.expect("canceled"), None);
    assert_eq!(tf.finish_cancellations(), 1);
    assert_eq!(tf.state(&running).as_deref(), Some("canceled"));
    // 204: already canceled.
    assert_eq!(client.cancel(&running).await.expect("canceled"), None);
    // 409: already finished, and it stays so.
    assert_eq!(client.cancel(&finished).await.expect("finished"), None);
    assert_eq!(tf.state(&finished).as_deref(), Some("complete"));
    // 404: Testing Farm does not know it; it cannot run either.
    assert_eq!(
        client
            .cancel("5a8b4c3e-0000-4000-8000-000000000000")
            .await
            .expect("unknown"),
        None
    );
    let statuses: Vec<u16> = tf
        .calls()
        .iter()
        .filter(|c| c.method == "DELETE")
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, vec![200, 204, 204, 409, 404]);
}

#[tokio::test]
async fn composes_lists_the_ranch() {
    let tf = standin().await;
    tf.set_composes("public", &["Fedora-Rawhide", "Fedora-42"]);
    let client = client(&tf.url(), None, None);
    assert_eq!(
        client.composes("public").await.expect("composes"),
        vec!["Fedora-Rawhide", "Fedora-42"]
    );
    let err = client.composes("nowhere").await.expect_err("no ranch");
    assert!(matches!(err, ClientError::Permanent { .. }), "{err:?}");
}

#[tokio::test]
async fn dry_run_records_exactly_what_would_be_sent_and_sends_nothing() {
    let tf = standin().await;
    let client = client(&tf.url(), None, Some(WEBHOOK_TOKEN));
    assert!(client.dry_run());
    let request = payload("https://ci.example.org/api/testing-farm/results");

    let Submitted::DryRun(dry) = client.submit(&request).await.expect("dry-run") else {
        panic!("sent");
    };
    assert_eq!(dry.service, "testing-farm");
    assert_eq!(dry.method, "POST");
    assert_eq!(dry.url, format!("{}/requests", tf.url()));
    let mut expected = request.clone();
    expected["notification"]["webhook"]["token"] = json!("<redacted>");
    assert_eq!(dry.body, Some(expected));
    assert_no_secrets(&format!("{dry:?}"));
    assert_no_secrets(&serde_json::to_string(&dry).expect("json"));

    let cancel = client
        .cancel("5a8b4c3e-0000-4000-8000-000000000000")
        .await
        .expect("dry-run")
        .expect("a record");
    assert_eq!(cancel.method, "DELETE");
    assert_eq!(
        cancel.url,
        format!("{}/requests/5a8b4c3e-0000-4000-8000-000000000000", tf.url())
    );
    assert_eq!(cancel.body, None);

    assert!(tf.calls().is_empty(), "{:?}", tf.calls());
    assert!(tf.requests().is_empty());
}

#[tokio::test]
async fn dry_run_without_a_webhook_token_shows_the_payload_unchanged() {
    let tf = standin().await;
    let client = client(&tf.url(), None, None);
    let request = payload("https://ci.example.org/api/testing-farm/results");
    let Submitted::DryRun(dry) = client.submit(&request).await.expect("dry-run") else {
        panic!("sent");
    };
    assert_eq!(dry.body, Some(request));
    assert_eq!(tf.call_count("/requests"), 0);
}

#[tokio::test]
async fn a_refused_token_is_an_auth_error_that_does_not_show_it() {
    let tf = TestingFarmStandin::start_with_token("the-right-token")
        .await
        .expect("the stand-in starts");
    let client = client(&tf.url(), Some(TOKEN), Some(WEBHOOK_TOKEN));

    let err = client
        .submit(&payload("https://ci.example.org/hook"))
        .await
        .expect_err("refused");
    assert!(matches!(err, ClientError::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("401"), "{err}");
    assert_no_secrets(&err.to_string());
    assert_no_secrets(&format!("{err:?}"));

    let err = client.cancel("some-id").await.expect_err("refused");
    assert!(matches!(err, ClientError::Auth { .. }), "{err:?}");
    assert_no_secrets(&format!("{err:?}"));
    assert!(tf.requests().is_empty());
}

#[tokio::test]
async fn a_bad_request_is_permanent_with_testing_farms_message() {
    let tf = standin().await;
    let mut request = payload("https://ci.example.org/hook");
    request["environments"] = json!([]);
    let err = client(&tf.url(), Some(TOKEN), Some(WEBHOOK_TOKEN))
        .submit(&request)
        .await
        .expect_err("rejected");
    match &err {
        ClientError::Permanent { message, .. } => {
            assert!(message.contains("400"), "{message}");
            assert!(message.contains("Request has no environments"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_no_secrets(&format!("{err:?}"));
}

#[tokio::test]
async fn server_errors_are_transient_until_they_stop() {
    let tf = standin().await;
    let client = client(&tf.url(), Some(TOKEN), None);
    tf.fail_next(5, 500);
    for _ in 0..5 {
        let err = client
            .submit(&payload("https://ci.example.org/hook"))
            .await
            .expect_err("failing");
        assert!(err.is_transient(), "{err:?}");
        assert_eq!(err.retry_after(), None);
    }
    submit(&client).await;
    assert_eq!(tf.requests().len(), 1);
    assert_eq!(tf.call_count("/requests"), 6);

    tf.fail_next(1, 503);
    let err = client.get("anything").await.expect_err("failing");
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn throttling_is_transient_with_retry_after() {
    let tf = standin().await;
    tf.throttle_next(1, 120);
    let err = client(&tf.url(), Some(TOKEN), None)
        .submit(&payload("https://ci.example.org/hook"))
        .await
        .expect_err("throttled");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert!(err.to_string().contains("429"), "{err}");
}

#[tokio::test]
async fn an_unreachable_service_is_transient() {
    let url = {
        let tf = standin().await;
        tf.url()
    };
    // The stand-in is gone: nothing listens on its port any more.
    let err = client(&url, Some(TOKEN), None)
        .submit(&payload("https://ci.example.org/hook"))
        .await
        .expect_err("unreachable");
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn a_silent_service_times_out_as_transient() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let client = TestingFarmClient::new(
        &url,
        Some(SecretString::from(TOKEN)),
        None,
        Timeouts {
            connect: Duration::from_secs(1),
            total: Duration::from_millis(300),
        },
    )
    .expect("a client");
    let err = client.get("some-id").await.expect_err("silent");
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    hold.abort();
}

#[tokio::test]
async fn notify_calls_the_webhook_like_testing_farm() {
    // Our side of the webhook, recording what it receives.
    let received = Arc::new(Mutex::new(Vec::<Value>::new()));
    let app = axum::Router::new().route(
        "/api/testing-farm/results",
        axum::routing::post({
            let received = received.clone();
            move |axum::Json(body): axum::Json<Value>| async move {
                received.lock().expect("lock").push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = format!(
        "http://{}/api/testing-farm/results",
        listener.local_addr().expect("addr")
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let tf = standin().await;
    let client = client(&tf.url(), Some(TOKEN), Some(WEBHOOK_TOKEN));
    let Submitted::Request { id } = client.submit(&payload(&hook)).await.expect("submitted") else {
        panic!("dry-run");
    };
    tf.set_state(&id, "running", None, None);

    assert_eq!(tf.notify(&id).await, Ok(200));
    assert_eq!(
        received.lock().expect("lock").clone(),
        vec![json!({ "request_id": id, "token": WEBHOOK_TOKEN })]
    );
    server.abort();
}

#[tokio::test]
async fn the_client_does_not_show_its_tokens() {
    let client = client(
        "https://api.testing-farm.io/v0.1",
        Some(TOKEN),
        Some(WEBHOOK_TOKEN),
    );
    assert_no_secrets(&format!("{client:?}"));
}

#[test]
fn a_bad_api_url_is_refused() {
    let err =
        TestingFarmClient::new("not a url", None, None, Timeouts::default()).expect_err("refused");
    assert!(err.to_string().contains("testing_farm.api_url"), "{err}");
}

/// A 307 or 308 would resend the submission, webhook token and all, to
/// wherever `Location` points: the client stops at the redirect instead.
#[tokio::test]
async fn a_redirect_is_a_permanent_error_and_is_not_followed() {
    let elsewhere = RawServer::start(Answer::json(r#"{"id": "stolen"}"#)).await;
    for status in [307, 308] {
        let redirecting = RawServer::start(Answer::redirect(
            status,
            &format!("{}/requests", elsewhere.url()),
        ))
        .await;
        let client = client(&redirecting.url(), Some(TOKEN), Some(WEBHOOK_TOKEN));
        let err = client
            .submit(&payload("https://ci.example.org/api/testing-farm/results"))
            .await
            .expect_err("a redirect");
        assert!(matches!(err, ClientError::Permanent { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "testing-farm: POST {}/requests: {status} ",
                redirecting.url()
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "redirected to {}, and redirects are not followed",
                elsewhere.host()
            )),
            "{text}"
        );
        assert_no_secrets(&text);
        assert_eq!(redirecting.requests().len(), 1);
        // A relative Location names the same host.
        let relative = RawServer::start(Answer::redirect(status, "/v0.2/requests/x")).await;
        let err = client_get(&relative, "x").await;
        assert!(
            err.to_string()
                .contains(&format!("redirected to {},", relative.host())),
            "{err}"
        );
    }
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
}

async fn client_get(server: &RawServer, id: &str) -> ClientError {
    client(&server.url(), None, None)
        .get(id)
        .await
        .expect_err("an error")
}

#[tokio::test]
async fn an_answer_larger_than_the_limit_is_refused() {
    // One with a Content-Length is refused before its body is read; one
    // without (chunked) when the limit is reached.
    for answer in [
        Answer::large_json(clients::http::MAX_JSON_BYTES + 1),
        Answer::Endless { status: 200 },
    ] {
        let server = RawServer::start(answer).await;
        let err = client_get(&server, "0f9a7b3c").await;
        assert_eq!(
            err,
            ClientError::Permanent {
                service: "testing-farm",
                message: format!(
                    "GET {}/requests/0f9a7b3c: the answer is larger than the limit of 4 MiB (4194304 bytes)",
                    server.url()
                ),
            }
        );
    }
    // Just under the limit is fine.
    let server = RawServer::start(Answer::large_json(clients::http::MAX_JSON_BYTES - 2)).await;
    let answer = client(&server.url(), None, None)
        .get("0f9a7b3c")
        .await
        .expect("within the limit");
    assert!(answer.is_string());
}

/// Only the start of an error's body is read: one that never ends gives the
/// status's error at once, not a timeout.
#[tokio::test]
async fn an_endless_error_body_is_cut() {
    let server = RawServer::start(Answer::Endless { status: 503 }).await;
    let client = TestingFarmClient::new(
        &server.url(),
        None,
        None,
        Timeouts {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(20),
        },
    )
    .expect("a client");
    let err = client.get("0f9a7b3c").await.expect_err("503");
    assert!(err.is_transient(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("503 Service Unavailable: aaaa"), "{text}");
    assert!(!text.contains("timed out"), "{text}");
    assert!(text.len() < 500, "{text}");
}

#[tokio::test]
async fn ids_that_are_not_path_segments_are_refused() {
    let tf = standin().await;
    let client = client(&tf.url(), Some(TOKEN), None);
    for id in ["..", ".", "", "a\tb"] {
        let err = client.get(id).await.expect_err(id);
        assert!(matches!(err, ClientError::Permanent { .. }), "{err:?}");
        assert!(err.to_string().contains("refusing to build a URL"), "{err}");
        let err = client.cancel(id).await.expect_err(id);
        assert!(matches!(err, ClientError::Permanent { .. }), "{err:?}");
    }
    assert!(tf.calls().is_empty(), "{:?}", tf.calls());
}

#[tokio::test]
async fn a_compose_the_ranch_does_not_list_is_refused() {
    let tf = standin().await;
    let client = client(&tf.url(), Some(TOKEN), None);
    let mut body = payload("https://ci.example/api/webhooks/testing-farm");
    body["environments"][0]["os"]["compose"] = json!("Fedora-39");
    let err = client.submit(&body).await.expect_err("unknown compose");
    match err {
        ClientError::Permanent { message, .. } => {
            assert!(message.contains("400"), "{message}");
            assert!(message.contains("Compose 'Fedora-39'"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(tf.requests().is_empty(), "nothing accepted");
    // Once the ranch lists it, the same request is taken.
    tf.set_composes("public", &["Fedora-Rawhide", "Fedora-39"]);
    client.submit(&body).await.expect("a listed compose");
    assert_eq!(tf.requests().len(), 1);
}
