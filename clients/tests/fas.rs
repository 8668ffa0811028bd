//! The FASJSON client against the FASJSON stand-in, over real HTTP: anonymously
//! through reqwest, and with Kerberos through `kinit` (a stand-in script
//! here) and the system's `curl --negotiate`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clients::ClientError;
use clients::fas::{Fas, FasAuth, FasClient, Kerberos};
use clients::http::Timeouts;
use clients::standins::fas::FasStandin;

async fn standin() -> FasStandin {
    let fas = FasStandin::start().await.expect("the stand-in starts");
    // Seven groups, two a page: packager is on page 3 of 4.
    fas.set_groups(
        "zbyszek",
        &[
            "fedora-contributor",
            "signed_fpca",
            "provenpackager",
            "qa",
            "packager",
            "systemd",
            "ipausers",
        ],
    );
    fas.set_groups("newcomer", &[]);
    fas
}

fn client(fas: &FasStandin) -> FasClient {
    FasClient::new(&fas.url(), FasAuth::None, Timeouts::default()).expect("a client")
}

fn pages_asked(fas: &FasStandin) -> Vec<String> {
    fas.calls()
        .into_iter()
        .map(|c| c.query.unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn membership_is_found_across_pages() {
    let fas = standin().await;
    assert_eq!(
        client(&fas).is_member("zbyszek", "packager").await,
        Ok(true)
    );
    assert_eq!(
        pages_asked(&fas),
        vec![
            "page_size=100&page_number=1",
            "page_size=100&page_number=2",
            "page_size=100&page_number=3",
        ]
    );
    assert!(
        fas.calls()
            .iter()
            .all(|c| c.path == "/v1/users/zbyszek/groups/")
    );
}

#[tokio::test]
async fn the_search_stops_at_the_first_page_that_has_the_group() {
    let fas = standin().await;
    assert_eq!(
        client(&fas)
            .is_member("zbyszek", "fedora-contributor")
            .await,
        Ok(true)
    );
    assert_eq!(fas.calls().len(), 1);
}

#[tokio::test]
async fn a_non_member_is_not_a_member_after_the_last_page() {
    let fas = standin().await;
    assert_eq!(
        client(&fas).is_member("zbyszek", "sysadmin-main").await,
        Ok(false)
    );
    assert_eq!(fas.calls().len(), 4);
    assert_eq!(
        client(&fas).is_member("newcomer", "packager").await,
        Ok(false)
    );
}

#[tokio::test]
async fn an_unknown_user_is_a_member_of_nothing() {
    let fas = standin().await;
    assert_eq!(
        client(&fas).is_member("nobody-at-all", "packager").await,
        Ok(false)
    );
    assert_eq!(fas.calls()[0].status, 404);
}

#[tokio::test]
async fn the_page_size_is_ours_to_choose() {
    let fas = standin().await;
    fas.set_max_page_size(50);
    let client = client(&fas).with_page_size(5);
    assert_eq!(client.is_member("zbyszek", "ipausers").await, Ok(true));
    assert_eq!(
        pages_asked(&fas),
        vec!["page_size=5&page_number=1", "page_size=5&page_number=2"]
    );
}

#[tokio::test]
async fn failures_are_classified() {
    let fas = standin().await;
    let client = client(&fas);

    fas.fail_next(1, 500);
    let err = client
        .is_member("zbyszek", "packager")
        .await
        .expect_err("500");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.service(), "fasjson");

    fas.throttle_next(1, 30);
    let err = client
        .is_member("zbyszek", "packager")
        .await
        .expect_err("429");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));

    fas.fail_next(1, 401);
    let err = client
        .is_member("zbyszek", "packager")
        .await
        .expect_err("401");
    assert!(matches!(err, ClientError::Auth { .. }), "{err:?}");

    // Once the failures stop, the look-up works again.
    let calls = fas.calls().len();
    let answer = client.is_member("zbyszek", "packager").await;
    assert_eq!(answer, Ok(true));
    assert_eq!(fas.calls().len(), calls + 3);

    drop(fas);
    let err = client
        .is_member("zbyszek", "packager")
        .await
        .expect_err("gone");
    assert!(err.is_transient(), "{err:?}");
}

/// A `kinit` that logs its arguments and credential cache, and then
/// succeeds (or fails, with `fail`).
fn fake_kinit(dir: &Path, fail: bool) -> (PathBuf, PathBuf) {
    let log = dir.join("kinit.log");
    let script = dir.join("kinit");
    let body = if fail {
        "echo 'kinit: Keytab contains no suitable keys for fedora-ci/ci.fedoraproject.org@FEDORAPROJECT.ORG' >&2\nexit 1\n".to_owned()
    } else {
        format!(
            "echo \"$* KRB5CCNAME=$KRB5CCNAME\" >> '{}'\nexit 0\n",
            log.display()
        )
    };
    std::fs::write(&script, format!("#!/bin/sh\n{body}")).expect("write kinit");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (script, log)
}

fn kerberos(dir: &Path, kinit: PathBuf) -> Kerberos {
    Kerberos {
        ccache: dir.join("ccache"),
        kinit_program: kinit,
        ..Kerberos::new(
            "fedora-ci/ci.fedoraproject.org@FEDORAPROJECT.ORG",
            dir.join("fedora-ci.keytab"),
        )
    }
}

#[tokio::test]
async fn kerberos_gets_a_ticket_once_and_calls_through_curl() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (kinit, log) = fake_kinit(dir.path(), false);
    let fas = standin().await;
    let client = FasClient::new(
        &fas.url(),
        FasAuth::Kerberos(kerberos(dir.path(), kinit)),
        Timeouts::default(),
    )
    .expect("a client");

    assert_eq!(client.is_member("zbyszek", "packager").await, Ok(true));
    assert_eq!(
        client.is_member("nobody-at-all", "packager").await,
        Ok(false)
    );

    let logged = std::fs::read_to_string(&log).expect("kinit ran");
    assert_eq!(
        logged,
        format!(
            "-k -t {keytab} fedora-ci/ci.fedoraproject.org@FEDORAPROJECT.ORG KRB5CCNAME=FILE:{ccache}\n",
            keytab = dir.path().join("fedora-ci.keytab").display(),
            ccache = dir.path().join("ccache").display(),
        )
    );
    // Three pages, then the unknown user.
    assert_eq!(fas.calls().len(), 4);
}

#[tokio::test]
async fn kerberos_passes_on_statuses_and_retry_after() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (kinit, _) = fake_kinit(dir.path(), false);
    let fas = standin().await;
    let client = FasClient::new(
        &fas.url(),
        FasAuth::Kerberos(kerberos(dir.path(), kinit)),
        Timeouts::default(),
    )
    .expect("a client");

    fas.throttle_next(1, 45);
    let err = client
        .is_member("zbyszek", "packager")
        .await
        .expect_err("429");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(45)));

    fas.fail_next(1, 503);
    let err = client
        .is_member("zbyszek", "packager")
        .await
        .expect_err("503");
    assert!(err.is_transient(), "{err:?}");

    drop(fas);
    let err = client
        .is_member("zbyszek", "packager")
        .await
        .expect_err("gone");
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("curl failed"), "{err}");
}

#[tokio::test]
async fn a_failing_kinit_is_an_auth_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (kinit, _) = fake_kinit(dir.path(), true);
    let fas = standin().await;
    let client = FasClient::new(
        &fas.url(),
        FasAuth::Kerberos(kerberos(dir.path(), kinit)),
        Timeouts::default(),
    )
    .expect("a client");
    match client.is_member("zbyszek", "packager").await {
        Err(ClientError::Auth { message, .. }) => {
            assert!(
                message.contains("Keytab contains no suitable keys"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(fas.calls().is_empty());
}
