//! The ELN package list client against the stand-in, over real HTTP: the
//! lists as tiny.distro.builders serves them, and the answers that must not
//! replace a list (an error, an HTML page, garbage, nothing, too much, a
//! redirect).

mod support;

use clients::ClientError;
use clients::eln::{MAX_LIST_BYTES, PackageListClient, PackageLists};
use clients::http::Timeouts;
use clients::standins::eln::{ELN_EXTRAS_PATH, ELN_PATH, PackageListStandin};
use support::{Answer, RawServer};

fn client() -> PackageListClient {
    PackageListClient::new(Timeouts::default()).expect("a client")
}

fn permanent_message(error: ClientError) -> String {
    match error {
        ClientError::Permanent { service, message } => {
            assert_eq!(service, "eln-package-list");
            message
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_list_is_read_line_by_line() {
    let lists = PackageListStandin::start().await.expect("the stand-in");
    lists.set_text(ELN_PATH, "glibc\nbash\n\npython3\nllvm\n");
    lists.set_list(ELN_EXTRAS_PATH, &["python-ogr", "libstdc++"]);
    assert_eq!(
        client().fetch(&lists.url(ELN_PATH)).await,
        Ok(["bash", "glibc", "llvm", "python3"]
            .map(str::to_owned)
            .to_vec())
    );
    assert_eq!(
        client().fetch(&lists.url(ELN_EXTRAS_PATH)).await,
        Ok(vec!["libstdc++".to_owned(), "python-ogr".to_owned()])
    );
    let calls = lists.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.method == "GET" && c.status == 200));
}

#[tokio::test]
async fn failures_are_classified() {
    let lists = PackageListStandin::start().await.expect("the stand-in");
    lists.set_list(ELN_PATH, &["bash"]);
    lists.fail_next(1, 503);
    let error = client().fetch(&lists.url(ELN_PATH)).await.expect_err("503");
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(
        client().fetch(&lists.url(ELN_PATH)).await,
        Ok(vec!["bash".to_owned()])
    );

    let missing = client()
        .fetch(&lists.url("/view-all-source-package-name-list--view-nope.txt"))
        .await
        .expect_err("404");
    assert!(
        permanent_message(missing).contains("404 Not Found"),
        "names the status"
    );
}

#[tokio::test]
async fn answers_that_are_not_lists_are_refused() {
    let lists = PackageListStandin::start().await.expect("the stand-in");
    let url = lists.url(ELN_PATH);

    lists.set_html(ELN_PATH);
    let message = permanent_message(client().fetch(&url).await.expect_err("HTML"));
    assert_eq!(
        message,
        format!("GET {url}: not a package list: the answer is an HTML page")
    );

    // Served as text, still a page.
    lists.set_text(ELN_PATH, "  <html><body>maintenance</body></html>\n");
    let message = permanent_message(client().fetch(&url).await.expect_err("HTML as text"));
    assert!(message.ends_with("the answer is an HTML page"), "{message}");

    lists.set_text(ELN_PATH, "\n# generated at 00:00\n\n");
    let message = permanent_message(client().fetch(&url).await.expect_err("empty"));
    assert!(
        message.ends_with("the answer names no package"),
        "{message}"
    );

    lists.set_text(ELN_PATH, "bash\nglibc\nrm -rf /\n");
    let message = permanent_message(client().fetch(&url).await.expect_err("garbage"));
    assert!(
        message.ends_with(r#"line 3: "rm -rf /" is not a package name"#),
        "{message}"
    );
}

#[tokio::test]
async fn large_answers_and_redirects_are_refused() {
    let mut body = Vec::new();
    while body.len() <= MAX_LIST_BYTES {
        body.extend_from_slice(b"python3\n");
    }
    let large = RawServer::start(Answer::Fixed {
        status: 200,
        headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
        body,
    })
    .await;
    let message = permanent_message(
        client()
            .fetch(&format!("{}/list.txt", large.url()))
            .await
            .expect_err("too large"),
    );
    assert!(
        message.contains("larger than the limit of 1 MiB (1048576 bytes)"),
        "{message}"
    );

    let elsewhere = RawServer::start(Answer::Fixed {
        status: 200,
        headers: Vec::new(),
        body: b"bash\n".to_vec(),
    })
    .await;
    let redirecting = RawServer::start(Answer::redirect(
        302,
        &format!("{}/list.txt", elsewhere.url()),
    ))
    .await;
    let message = permanent_message(
        client()
            .fetch(&format!("{}/list.txt", redirecting.url()))
            .await
            .expect_err("a redirect"),
    );
    assert!(
        message.contains(&format!("302 Found: redirected to {}", elsewhere.host())),
        "{message}"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "the redirect is not followed"
    );
}
