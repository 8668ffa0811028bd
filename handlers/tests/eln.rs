//! Which rawhide pull requests get an ELN scratch build: the package is on
//! the ELN package list the service fetched (kept in the `facts` table), or
//! in the operator's `fedora_ci.eln_packages`. Real pull-request messages,
//! renamed to real Fedora packages, decided on the real database.

mod support;

use checkers::policy::Policy;
use checkers::rules::Fact;
use serde_json::{Value, json};
use sqlx::PgPool;
use store::eln::ListSource;

const ELN: &str = "https://tiny.distro.builders/view-all-source-package-name-list--view-eln.txt";
const EXTRAS: &str =
    "https://tiny.distro.builders/view-all-source-package-name-list--view-eln-extras.txt";

/// The real PR-opened message (a fork's pull request against rawhide), as
/// one against the package `name`.
fn opened(name: &str) -> Value {
    let message = support::message("pagure.pull-request.new-fork.json");
    let text = serde_json::to_string(&message).expect("JSON");
    let mut message: Value =
        serde_json::from_str(&text.replace("optee_os", name)).expect("still JSON");
    message["id"] = json!(uuid::Uuid::new_v4().to_string());
    message
}

/// Everything on, with `llvm` in `fedora_ci.eln_packages`.
fn context() -> handlers::Context {
    let mut policy = Policy::local_default();
    policy.eln_packages.insert("llvm".into());
    handlers::Context::local(policy)
}

/// What the last fetch of both lists of tiny.distro.builders found, on 3
/// December 2026 at 10:00 UTC.
async fn fetched(pool: &PgPool) {
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
        .expect("a time")
        .to_utc();
    store::eln::store_list(
        pool,
        &["bash", "glibc", "python3"].map(str::to_owned),
        &[
            ListSource {
                url: ELN.into(),
                count: 2,
            },
            ListSource {
                url: EXTRAS.into(),
                count: 1,
            },
        ],
        at,
    )
    .await
    .expect("the list stored");
}

/// The decisions of an event about the ELN build: (outcome, reason).
async fn eln_decisions(pool: &PgPool, event: i64) -> Vec<(String, String)> {
    let outcome = support::outcome(pool, event).await;
    outcome["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .filter(|d| {
            let subject = d["subject"].as_str().unwrap_or_default();
            subject == "ELN scratch build" || subject == "scratch build eln"
        })
        .map(|d| {
            (
                d["outcome"].as_str().unwrap_or_default().to_owned(),
                d["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Koji targets of the builds decided, in order.
async fn targets(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT target FROM koji_builds ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("builds")
}

/// Decide `name`'s pull request; when the rule asks whether the package
/// has an `eln` branch, answer no. The event's id.
async fn decide_pull_request(pool: &PgPool, ctx: &handlers::Context, name: &str) -> i64 {
    let event = support::record(pool, &opened(name)).await;
    support::decide_all(pool, ctx).await;
    let branch = Fact::BranchExists {
        project_url: format!("https://src.fedoraproject.org/rpms/{name}"),
        branch: "eln".into(),
    };
    support::record_internal(
        pool,
        events::typed::TOPIC_FACT,
        json!({"key": branch.key(), "value": false}),
    )
    .await;
    support::decide_all(pool, ctx).await;
    event
}

#[tokio::test(flavor = "multi_thread")]
async fn a_package_on_the_fetched_list_gets_an_eln_build() {
    let pool = support::fresh_db().await;
    fetched(&pool).await;
    let event = decide_pull_request(&pool, &context(), "glibc").await;
    assert_eq!(targets(&pool).await, ["rawhide", "eln"]);
    let decisions = eln_decisions(&pool, event).await;
    assert_eq!(
        decisions.last(),
        Some(&(
            "acted".to_owned(),
            "submitting git+https://src.fedoraproject.org/forks/zbyszek/rpms/glibc.git#889f07af35d27bbcaf9c535c17a63b974aa42ee3 to Koji target eln".to_owned()
        )),
        "{decisions:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_package_not_on_it_is_skipped_naming_the_list_and_when_it_was_fetched() {
    let pool = support::fresh_db().await;
    fetched(&pool).await;
    let event = decide_pull_request(&pool, &context(), "python-ogr").await;
    assert_eq!(targets(&pool).await, ["rawhide"]);
    assert_eq!(
        eln_decisions(&pool, event).await,
        [(
            "skipped".to_owned(),
            "not an ELN package: python-ogr is not on the ELN package lists of \
             tiny.distro.builders (fetched 2026-12-03 10:00 UTC) nor in fedora_ci.eln_packages"
                .to_owned()
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_fetched_list_the_reason_says_it_was_never_fetched() {
    let pool = support::fresh_db().await;
    let event = decide_pull_request(&pool, &context(), "glibc").await;
    assert_eq!(targets(&pool).await, ["rawhide"]);
    assert_eq!(
        eln_decisions(&pool, event).await,
        [(
            "skipped".to_owned(),
            "the ELN package list has never been fetched (fedora_ci.eln_packages_urls); \
             glibc is not in fedora_ci.eln_packages"
                .to_owned()
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_static_list_counts_with_or_without_a_fetched_one() {
    for with_list in [false, true] {
        let pool = support::fresh_db().await;
        if with_list {
            fetched(&pool).await;
        }
        decide_pull_request(&pool, &context(), "llvm").await;
        assert_eq!(
            targets(&pool).await,
            ["rawhide", "eln"],
            "fetched list: {with_list}"
        );
        pool.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_fetching_off_a_list_fetched_before_is_not_read() {
    let pool = support::fresh_db().await;
    fetched(&pool).await;
    let mut ctx = context();
    ctx.policy.eln_packages_urls.clear();
    let event = decide_pull_request(&pool, &ctx, "glibc").await;
    assert_eq!(targets(&pool).await, ["rawhide"]);
    assert_eq!(
        eln_decisions(&pool, event).await,
        [(
            "skipped".to_owned(),
            "not an ELN package: glibc is not in fedora_ci.eln_packages, and no ELN package \
             list is fetched"
                .to_owned()
        )]
    );
    decide_pull_request(&pool, &ctx, "llvm").await;
    assert_eq!(targets(&pool).await, ["rawhide", "rawhide", "eln"]);
}

/// The periodic clean-up deletes old facts, but never the ELN package list
/// (an old list is still the best there is) nor its last failure.
#[tokio::test(flavor = "multi_thread")]
async fn clean_up_keeps_the_eln_list() {
    let pool = support::fresh_db().await;
    fetched(&pool).await;
    store::eln::store_failure(
        &pool,
        &store::eln::Failure {
            at: chrono::Utc::now() - chrono::Duration::days(90),
            url: EXTRAS.into(),
            error: "eln-package-list: timed out".into(),
        },
    )
    .await
    .expect("the failure stored");
    store::flows::store_fact(&pool, "fas:group:packager:zbyszek", &json!(true))
        .await
        .expect("a fact");
    sqlx::query("UPDATE facts SET checked_at = now() - interval '90 days'")
        .execute(&pool)
        .await
        .expect("aged");
    let deleted = store::periodic::clean_up(&pool, std::time::Duration::from_secs(30 * 86_400))
        .await
        .expect("clean-up");
    assert_eq!(deleted, 1, "the group membership went");
    let left: Vec<String> = sqlx::query_scalar("SELECT key FROM facts ORDER BY key")
        .fetch_all(&pool)
        .await
        .expect("facts");
    assert_eq!(left, ["eln-packages", "eln-packages-error"]);
    let listing = store::eln::listing(&pool, "glibc")
        .await
        .expect("read")
        .expect("a list");
    assert!(listing.listed);
    assert_eq!(listing.sources, [ELN, EXTRAS]);
}
