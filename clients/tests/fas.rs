//! The FASJSON client against the FASJSON stand-in, over real HTTP: anonymously
//! through reqwest, and with Kerberos through `kinit` (a stand-in script
//! here) and the system's `curl --negotiate`.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clients::ClientError;
use clients::fas::{Fas, FasAuth, FasClient, Kerberos};
use clients::http::Timeouts;
use clients::standins::fas::FasStandin;
use support::{Answer, RawServer};

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
        ccache: Some(dir.join("ccache")),
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

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}")).expect("write the script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn kerberos_client(url: &str, kerberos: Kerberos) -> FasClient {
    FasClient::new(url, FasAuth::Kerberos(kerberos), Timeouts::default()).expect("a client")
}

/// Without a configured cache, the ticket goes into a private directory with
/// a random name, which lives as long as the client.
#[tokio::test]
async fn the_default_credential_cache_is_in_a_private_directory() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (kinit, log) = fake_kinit(dir.path(), false);
    let fas = standin().await;
    let client = kerberos_client(
        &fas.url(),
        Kerberos {
            kinit_program: kinit,
            ..Kerberos::new("fedora-ci@FEDORAPROJECT.ORG", dir.path().join("keytab"))
        },
    );
    assert_eq!(client.is_member("zbyszek", "packager").await, Ok(true));

    let logged = std::fs::read_to_string(&log).expect("kinit ran");
    let ccache = logged
        .trim()
        .rsplit_once("KRB5CCNAME=FILE:")
        .map(|(_, path)| PathBuf::from(path))
        .expect("a FILE: cache");
    let private = ccache.parent().expect("a directory").to_owned();
    assert_eq!(ccache.file_name().and_then(|n| n.to_str()), Some("ccache"));
    // Not the old predictable name, `/tmp/fedora-ci-worker-fasjson-<pid>.ccache`.
    assert!(
        !ccache.ends_with(format!(
            "fedora-ci-worker-fasjson-{}.ccache",
            std::process::id()
        )),
        "{}",
        ccache.display()
    );
    assert_ne!(private, std::env::temp_dir());
    let meta = std::fs::metadata(&private).expect("the directory exists");
    assert_eq!(meta.mode() & 0o777, 0o700, "{}", private.display());
    drop(client);
    assert!(!private.exists(), "{} was left behind", private.display());
}

/// A KDC that does not answer must not hold a look-up for ever.
#[tokio::test]
async fn a_kinit_that_hangs_is_killed_and_transient() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let kinit = dir.path().join("kinit");
    let pid_file = dir.path().join("kinit.pid");
    write_script(
        &kinit,
        &format!("echo $$ > '{}'\nexec sleep 60\n", pid_file.display()),
    );
    let fas = standin().await;
    let client = kerberos_client(
        &fas.url(),
        Kerberos {
            kinit_timeout: Duration::from_millis(500),
            ..kerberos(dir.path(), kinit)
        },
    );
    let err = client
        .is_member("zbyszek", "packager")
        .await
        .expect_err("a timeout");
    assert_eq!(
        err,
        ClientError::Transient {
            service: "fasjson",
            message: "kinit for fedora-ci/ci.fedoraproject.org@FEDORAPROJECT.ORG did not finish within 500ms and was killed (is the KDC reachable?)".to_owned(),
            retry_after: None,
        }
    );
    assert!(fas.calls().is_empty());
    // The process is gone (or a zombie about to be reaped), not sleeping on.
    let pid = std::fs::read_to_string(&pid_file).expect("kinit started");
    let stat = PathBuf::from(format!("/proc/{}/stat", pid.trim()));
    let mut state = None;
    for _ in 0..100 {
        state = std::fs::read_to_string(&stat)
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.chars().next()))
            .flatten();
        if matches!(state, None | Some('Z')) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(matches!(state, None | Some('Z')), "kinit is {state:?}");
}

#[tokio::test]
async fn a_redirect_is_a_permanent_error_and_is_not_followed() {
    let elsewhere =
        RawServer::start(Answer::json(r#"{"result": [{"groupname": "packager"}]}"#)).await;
    let redirecting = RawServer::start(Answer::redirect(
        307,
        &format!("{}/v1/users/zbyszek/groups/", elsewhere.url()),
    ))
    .await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (kinit, _) = fake_kinit(dir.path(), false);
    let anonymous =
        FasClient::new(&redirecting.url(), FasAuth::None, Timeouts::default()).expect("a client");
    let with_curl = kerberos_client(&redirecting.url(), kerberos(dir.path(), kinit));
    for client in [&anonymous, &with_curl] {
        let err = client
            .is_member("zbyszek", "packager")
            .await
            .expect_err("a redirect");
        assert_eq!(
            err,
            ClientError::Permanent {
                service: "fasjson",
                message: format!(
                    "GET {}/v1/users/zbyszek/groups/?page_size=100&page_number=1: 307 Temporary Redirect: redirected to {}, and redirects are not followed (is the configured URL the API's own?)",
                    redirecting.url(),
                    elsewhere.host()
                ),
            }
        );
    }
    assert_eq!(redirecting.requests().len(), 2);
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
}

#[tokio::test]
async fn an_answer_larger_than_the_limit_is_refused() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (kinit, _) = fake_kinit(dir.path(), false);
    // With a Content-Length (curl's --max-filesize stops it), and chunked
    // without one (the output limit does).
    for answer in [
        Answer::large_json(clients::http::MAX_JSON_BYTES + 1),
        Answer::Endless { status: 200 },
    ] {
        let server = RawServer::start(answer).await;
        let anonymous =
            FasClient::new(&server.url(), FasAuth::None, Timeouts::default()).expect("a client");
        let with_curl = kerberos_client(&server.url(), kerberos(dir.path(), kinit.clone()));
        for client in [&anonymous, &with_curl] {
            let err = client
                .is_member("zbyszek", "packager")
                .await
                .expect_err("too large");
            assert_eq!(
                err,
                ClientError::Permanent {
                    service: "fasjson",
                    message: format!(
                        "GET {}/v1/users/zbyszek/groups/?page_size=100&page_number=1: the answer is larger than the limit of 4 MiB (4194304 bytes)",
                        server.url()
                    ),
                }
            );
        }
    }
}

/// The child processes get a clean environment (support::child_env).
#[test]
fn kinit_and_curl_get_only_the_environment_they_need() {
    if !support::child_env::rerun_with_service_secrets(
        "kinit_and_curl_get_only_the_environment_they_need",
    ) {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let kinit = dir.path().join("kinit");
        write_script(
            &kinit,
            &format!("export -p > '{}'\n", dir.path().join("kinit.env").display()),
        );
        // curl records what it was given, then is the real one.
        let curl = dir.path().join("curl");
        write_script(
            &curl,
            &format!(
                "export -p > '{}'\nexec curl \"$@\"\n",
                dir.path().join("curl.env").display()
            ),
        );
        let fas = standin().await;
        let client = kerberos_client(
            &fas.url(),
            Kerberos {
                curl_program: curl,
                ..kerberos(dir.path(), kinit)
            },
        );
        assert_eq!(client.is_member("zbyszek", "packager").await, Ok(true));
        for program in ["kinit", "curl"] {
            let dump = std::fs::read_to_string(dir.path().join(format!("{program}.env")))
                .expect("the program ran");
            let env = support::child_env::check_child_env(program, &dump);
            assert_eq!(
                env.get("KRB5CCNAME").cloned(),
                Some(format!("FILE:{}", dir.path().join("ccache").display())),
                "{program}"
            );
            assert!(env.contains_key("PATH"), "{program}");
        }
    });
}

/// curl has its own `--max-time`; one that does not finish anyway (here a
/// fake that ignores it) is killed after that and the connect timeout.
#[tokio::test]
async fn a_curl_that_hangs_is_killed_and_transient() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (kinit, _) = fake_kinit(dir.path(), false);
    let curl = dir.path().join("curl");
    write_script(&curl, "exec sleep 60\n");
    let fas = standin().await;
    let client = FasClient::new(
        &fas.url(),
        FasAuth::Kerberos(Kerberos {
            curl_program: curl,
            ..kerberos(dir.path(), kinit)
        }),
        Timeouts {
            connect: Duration::from_millis(200),
            total: Duration::from_millis(300),
        },
    )
    .expect("a client");
    let err = client
        .is_member("zbyszek", "packager")
        .await
        .expect_err("a timeout");
    assert!(err.is_transient(), "{err:?}");
    assert!(
        err.to_string()
            .ends_with("curl did not finish within 500ms and was killed"),
        "{err}"
    );
}
