//! What every handler shares: the context, the decision log of one event,
//! facts, flags and links.

use checkers::naming;
use checkers::policy::Policy;
use checkers::project::ProjectRef;
use checkers::rules::{Fact, Skip};
use events::states::FlagStatus;
use events::typed::Repo;
use serde_json::json;
use sqlx::PgConnection;
use store::flows::{self, Decision, FlagState, Outcome};
use store::jobs::{self, JobKind, NewJob};

/// What the handlers know of the service's configuration.
#[derive(Debug, Clone)]
pub struct Context {
    pub policy: Policy,
    /// Tests of Bodhi updates and their CI messages.
    pub gating: checkers::gating::GatingPolicy,
    /// The public dist-git base that project URLs must start with.
    pub distgit_url: String,
    /// Our own public base URL, for links in flags to our pages.
    pub public_url: String,
    /// A Packit-style dashboard that reads our API: when set, flags link its
    /// job pages instead of ours.
    pub dashboard_url: Option<String>,
    /// Koji's web UI, for task links.
    pub koji_web_url: String,
    /// Koji's file tree (`topurl`), for build log links.
    pub koji_top_url: String,
    /// How long a looked-up group membership is trusted.
    pub membership_ttl: chrono::Duration,
    /// How long a looked-up branch list is trusted.
    pub branch_ttl: chrono::Duration,
}

impl Context {
    /// The defaults for a local machine, with the given policy.
    pub fn local(policy: Policy) -> Self {
        Context {
            policy,
            gating: checkers::gating::GatingPolicy::local_default(),
            distgit_url: "https://src.fedoraproject.org".into(),
            public_url: "http://127.0.0.1:8080".into(),
            dashboard_url: None,
            koji_web_url: "https://koji.fedoraproject.org/koji".into(),
            koji_top_url: "https://kojipkgs.fedoraproject.org".into(),
            membership_ttl: chrono::Duration::hours(1),
            branch_ttl: chrono::Duration::hours(6),
        }
    }

    pub fn koji_task_url(&self, task_id: i64) -> String {
        format!(
            "{}/taskinfo?taskID={task_id}",
            self.koji_web_url.trim_end_matches('/')
        )
    }

    /// Koji keeps each task's files under `work/tasks/<id mod 10000>/<id>/`.
    pub fn koji_build_log_url(&self, task_id: i64) -> String {
        format!(
            "{}/work/tasks/{}/{task_id}/build.log",
            self.koji_top_url.trim_end_matches('/'),
            task_id % 10_000
        )
    }

    /// The page a flag links for a Koji build while there is no Koji task
    /// to link: the dashboard's job page, as Packit links it
    /// (`<dashboard_url>/jobs/koji/<id>`), else our own page of the build.
    /// The id comes last, so that an empty one gives the prefix of all.
    pub fn build_page(&self, build_id: impl std::fmt::Display) -> String {
        match &self.dashboard_url {
            Some(dashboard) => {
                format!("{}/jobs/koji/{build_id}", dashboard.trim_end_matches('/'))
            }
            None => format!(
                "{}/koji-builds/{build_id}",
                self.public_url.trim_end_matches('/')
            ),
        }
    }

    /// The page a flag links for a Testing Farm run while Testing Farm has
    /// no artifacts to link: the dashboard's job page, as Packit links it
    /// (`<dashboard_url>/jobs/testing-farm/<id>`), else our own page of the
    /// run.
    pub fn test_page(&self, run_id: impl std::fmt::Display) -> String {
        match &self.dashboard_url {
            Some(dashboard) => format!(
                "{}/jobs/testing-farm/{run_id}",
                dashboard.trim_end_matches('/')
            ),
            None => format!(
                "{}/testing-farm/{run_id}",
                self.public_url.trim_end_matches('/')
            ),
        }
    }

    pub fn webhook_url(&self) -> String {
        format!(
            "{}/api/testing-farm/results",
            self.public_url.trim_end_matches('/')
        )
    }

    /// A repository's web URL: as the message gives it, else under our
    /// dist-git base.
    pub fn repo_url(&self, repo: &Repo) -> String {
        match &repo.full_url {
            Some(url) => url.clone(),
            None => format!(
                "{}/{}/{}",
                self.distgit_url.trim_end_matches('/'),
                repo.namespace,
                repo.name
            ),
        }
    }

    pub fn project(&self, url: &str) -> Result<ProjectRef, Skip> {
        checkers::project::parse_project_url(&self.distgit_url, url)
    }
}

/// An inbox row to decide about.
#[derive(Debug, Clone, Copy)]
pub struct EventRow<'a> {
    pub id: i64,
    pub topic: &'a str,
    pub body: Option<&'a serde_json::Value>,
}

/// What deciding one event produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub event_id: i64,
    pub decisions: Vec<Decision>,
    /// Events put back in line by a fact this event brought; their status
    /// is theirs, not this event's.
    pub woken: Vec<i64>,
    /// State changes of builds and test runs, counted once the decisions
    /// are committed.
    pub observations: Vec<crate::Observation>,
    /// What this event caused on an earlier pass (it waited for a fact, or an operator had it
    /// decided again), when this pass found that work already there and did nothing new.
    pub earlier: Vec<String>,
}

/// A decision as the event's reason names it: `<subject>: <reason>`.
fn described(subject: Option<&str>, reason: &str) -> String {
    match subject {
        Some(subject) => format!("{subject}: {reason}"),
        None => reason.to_owned(),
    }
}

impl Decided {
    /// The event's status and reason, from its decisions.
    pub fn status(&self) -> (&'static str, String) {
        let of = |outcome: Outcome| {
            self.decisions
                .iter()
                .filter(move |d| d.outcome == outcome)
                .map(|d| described(d.subject.as_deref(), &d.reason))
                .collect::<Vec<_>>()
        };
        let (status, reasons) = if !of(Outcome::Failed).is_empty() {
            ("failed", of(Outcome::Failed))
        } else if !of(Outcome::Acted).is_empty() || !of(Outcome::Waiting).is_empty() {
            let mut reasons = of(Outcome::Acted);
            reasons.extend(of(Outcome::Waiting));
            ("processed", reasons)
        } else if !self.earlier.is_empty() {
            // The event started that work: finding it there again changes nothing of that,
            // and is not repeated beside it.
            let mut reasons = self.earlier.clone();
            reasons.extend(
                self.decisions
                    .iter()
                    .filter(|d| d.outcome == Outcome::Skipped && !d.reason.starts_with(ALREADY))
                    .map(|d| described(d.subject.as_deref(), &d.reason)),
            );
            ("processed", reasons)
        } else {
            ("skipped", of(Outcome::Skipped))
        };
        let mut reason = reasons.join("; ");
        if reason.len() > 1000 {
            let cut = (0..=1000)
                .rev()
                .find(|i| reason.is_char_boundary(*i))
                .unwrap_or(0);
            reason.truncate(cut);
            reason.push('…');
        }
        (status, reason)
    }
}

/// How the reason of [`Decisions::already_decided`] begins.
const ALREADY: &str = "already decided";

/// The decision log of one event, as it is being decided.
pub(crate) struct Decisions {
    pub event_id: i64,
    decisions: Vec<Decision>,
    woken: Vec<i64>,
    observations: Vec<crate::Observation>,
    /// Some work this event would start was found already there.
    found_existing: bool,
    earlier: Vec<String>,
}

impl Decisions {
    pub fn new(event_id: i64) -> Self {
        Decisions {
            event_id,
            decisions: Vec::new(),
            woken: Vec::new(),
            observations: Vec::new(),
            found_existing: false,
            earlier: Vec::new(),
        }
    }

    fn push(
        &mut self,
        handler: &'static str,
        outcome: Outcome,
        subject: Option<String>,
        reason: impl Into<String>,
        pipeline_id: Option<i64>,
    ) {
        self.decisions.push(Decision {
            handler,
            outcome,
            subject,
            reason: reason.into(),
            pipeline_id,
        });
    }

    pub fn acted(
        &mut self,
        handler: &'static str,
        subject: Option<String>,
        reason: impl Into<String>,
        pipeline_id: Option<i64>,
    ) {
        self.push(handler, Outcome::Acted, subject, reason, pipeline_id);
    }

    pub fn skipped(
        &mut self,
        handler: &'static str,
        subject: Option<String>,
        reason: impl Into<String>,
    ) {
        self.push(handler, Outcome::Skipped, subject, reason, None);
    }

    pub fn skipped_in(
        &mut self,
        handler: &'static str,
        subject: Option<String>,
        reason: impl Into<String>,
        pipeline_id: i64,
    ) {
        self.push(
            handler,
            Outcome::Skipped,
            subject,
            reason,
            Some(pipeline_id),
        );
    }

    /// The work this decision would start is already there: decided by this event on an
    /// earlier pass, or by another event.
    pub fn already_decided(
        &mut self,
        handler: &'static str,
        subject: Option<String>,
        reason: impl Into<String>,
        pipeline_id: i64,
    ) {
        let reason = reason.into();
        debug_assert!(reason.starts_with(ALREADY), "{reason}");
        self.found_existing = true;
        self.skipped_in(handler, subject, reason, pipeline_id);
    }

    /// When this pass only found work already there, what this event caused on its earlier
    /// passes, so that its status keeps saying so (and is not `skipped`).
    pub async fn recall_earlier_passes(
        &mut self,
        conn: &mut PgConnection,
    ) -> Result<(), sqlx::Error> {
        let new_effect = self.decisions.iter().any(|d| d.outcome != Outcome::Skipped);
        if !self.found_existing || new_effect {
            return Ok(());
        }
        self.earlier = flows::decisions_of_event(&mut *conn, self.event_id)
            .await?
            .into_iter()
            .filter(|d| d.outcome == Outcome::Acted.as_str())
            .map(|d| {
                format!(
                    "{} (on an earlier pass)",
                    described(d.subject.as_deref(), &d.reason)
                )
            })
            .collect();
        Ok(())
    }

    pub fn waiting(
        &mut self,
        handler: &'static str,
        subject: Option<String>,
        reason: impl Into<String>,
        pipeline_id: Option<i64>,
    ) {
        self.push(handler, Outcome::Waiting, subject, reason, pipeline_id);
    }

    pub fn failed(&mut self, handler: &'static str, reason: impl Into<String>) {
        self.push(handler, Outcome::Failed, None, reason, None);
    }

    pub fn woke(&mut self, ids: Vec<i64>) {
        self.woken.extend(ids);
    }

    /// Note a state change for the metrics (none: nothing to count).
    pub fn observe(&mut self, observation: Option<crate::Observation>) {
        self.observations.extend(observation);
    }

    pub fn finish(self) -> Decided {
        Decided {
            event_id: self.event_id,
            decisions: self.decisions,
            woken: self.woken,
            observations: self.observations,
            earlier: self.earlier,
        }
    }
}

/// A fact's value if a job has looked it up recently enough.
pub(crate) async fn known_fact(
    conn: &mut PgConnection,
    ctx: &Context,
    fact: &Fact,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    flows::fact(&mut *conn, &fact.key(), max_age(ctx, fact)).await
}

/// How long a looked-up fact is trusted; `None` for one that never changes.
fn max_age(ctx: &Context, fact: &Fact) -> Option<chrono::Duration> {
    match fact {
        Fact::GroupMember { .. } => Some(ctx.membership_ttl),
        Fact::BranchExists { .. } => Some(ctx.branch_ttl),
        // What a commit holds, and how a build was made, never change.
        Fact::FileExists { .. } | Fact::KojiBuild { .. } => None,
    }
}

/// A yes/no fact, if known.
pub(crate) async fn known_flag_fact(
    conn: &mut PgConnection,
    ctx: &Context,
    fact: &Fact,
) -> Result<Option<bool>, sqlx::Error> {
    Ok(known_fact(conn, ctx, fact).await?.and_then(|v| {
        v.as_bool()
            .or_else(|| v.get("value").and_then(|v| v.as_bool()))
    }))
}

/// Ask for a fact to be looked up unless it is known, without waiting for
/// it (a later decision will want it, and it is cheaper to have it by then).
pub(crate) async fn prefetch_fact(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &Decisions,
    fact: &Fact,
) -> Result<(), sqlx::Error> {
    jobs::enqueue_unless_known(
        &mut *conn,
        &lookup_job(ctx, fact, Some(d.event_id)),
        &fact.key(),
    )
    .await?;
    Ok(())
}

/// Park the event until a fact is known: a job looks it up, and its arrival
/// makes the event be decided again.
pub(crate) async fn wait_for(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    handler: &'static str,
    subject: Option<String>,
    fact: &Fact,
    pipeline_id: Option<i64>,
) -> Result<(), sqlx::Error> {
    flows::lock_fact(&mut *conn, &fact.key(), false).await?;
    if known_fact(conn, ctx, fact).await?.is_some() {
        // It arrived while this event was being decided: decide it again.
        d.waiting(
            handler,
            subject,
            format!("{} became known meanwhile; deciding again", fact.describe()),
            pipeline_id,
        );
        d.woke(vec![d.event_id]);
        return Ok(());
    }
    jobs::enqueue(&mut *conn, &lookup_job(ctx, fact, Some(d.event_id))).await?;
    flows::wait_for_fact(&mut *conn, &fact.key(), d.event_id).await?;
    d.waiting(
        handler,
        subject,
        format!("waiting to know {}", fact.describe()),
        pipeline_id,
    );
    Ok(())
}

fn lookup_job(ctx: &Context, fact: &Fact, event_id: Option<i64>) -> NewJob {
    // The same question is asked once per period the answer is trusted for
    // (an hour for facts that never change): the period's number is part of
    // the key. A shorter trust than the period would leave an event waiting
    // for a look-up that the key keeps from being asked again.
    let period = max_age(ctx, fact)
        .map_or(3600, |age| age.num_seconds())
        .max(1);
    let round = chrono::Utc::now().timestamp() / period;
    NewJob {
        kind: JobKind::LookupFact,
        dedup_key: format!("lookup-fact:{}:{period}:{round}", fact.key()),
        payload: json!({"fact": fact.key(), "what": fact.describe(), "detail": fact_detail(fact)}),
        event_id,
        pipeline_id: None,
    }
}

fn fact_detail(fact: &Fact) -> serde_json::Value {
    match fact {
        Fact::BranchExists {
            project_url,
            branch,
        } => {
            json!({"kind": "branch-exists", "project_url": project_url, "branch": branch})
        }
        Fact::FileExists {
            project_url,
            sha,
            path,
        } => json!({"kind": "file-exists", "project_url": project_url, "sha": sha, "path": path}),
        Fact::GroupMember { user, group } => {
            json!({"kind": "group-member", "user": user, "group": group})
        }
        Fact::KojiBuild { build_id } => json!({"kind": "koji-build", "build_id": build_id}),
    }
}

/// A flag to show on a pull request for one check of a pipeline.
pub(crate) struct FlagUpdate<'a> {
    pub pull_request_id: i64,
    pub pipeline_id: i64,
    pub commit_sha: &'a str,
    /// "scratch build" or a test name.
    pub subject: &'a str,
    /// The branch label of the check name (`rawhide`, `f41`, `eln`).
    pub branch_label: &'a str,
    pub status: FlagStatus,
    pub comment: &'a str,
    pub url: &'a str,
    pub koji_build_id: Option<i64>,
    pub test_run_id: Option<i64>,
}

/// Set a flag's desired state, and when it changed, a job to send it.
/// Returns whether it changed.
pub(crate) async fn set_flag(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &Decisions,
    flag: &FlagUpdate<'_>,
) -> Result<bool, sqlx::Error> {
    let (check_name, uid) = flag_names(ctx, flag.subject, flag.branch_label, flag.commit_sha);
    let comment = naming::truncate_comment(flag.comment);
    let changed = flows::set_flag(
        &mut *conn,
        &FlagState {
            pull_request_id: flag.pull_request_id,
            pipeline_id: flag.pipeline_id,
            commit_sha: flag.commit_sha,
            check_name: &check_name,
            uid: &uid,
            status: flag.status.as_str(),
            comment: &comment,
            url: flag.url,
            koji_build_id: flag.koji_build_id,
            test_run_id: flag.test_run_id,
        },
        d.event_id,
    )
    .await?;
    Ok(changed.is_some())
}

/// End the flags of an ended pipeline still `pending`: `canceled`, with the
/// comment `comment(is_build)` gives. Returns how many changed.
pub(crate) async fn cancel_pending_flags(
    conn: &mut PgConnection,
    d: &Decisions,
    pipeline_id: i64,
    comment: impl Fn(bool) -> String,
) -> Result<usize, sqlx::Error> {
    let mut changed = 0;
    for flag in flows::pending_flags(&mut *conn, pipeline_id).await? {
        let comment = naming::truncate_comment(&comment(flag.test_run_id.is_none()));
        let set = flows::set_flag(
            &mut *conn,
            &FlagState {
                pull_request_id: flag.pull_request_id,
                pipeline_id,
                commit_sha: &flag.commit_sha,
                check_name: &flag.check_name,
                uid: &flag.uid,
                status: FlagStatus::Canceled.as_str(),
                comment: &comment,
                url: &flag.url,
                koji_build_id: flag.koji_build_id,
                test_run_id: flag.test_run_id,
            },
            d.event_id,
        )
        .await?;
        changed += usize::from(set.is_some());
    }
    Ok(changed)
}

/// The check name and flag uid of a check.
pub(crate) fn flag_names(
    ctx: &Context,
    subject: &str,
    branch_label: &str,
    commit_sha: &str,
) -> (String, String) {
    let check_name = naming::check_name(
        &ctx.policy.check_name_prefix,
        subject,
        branch_label,
        commit_sha,
    );
    let uid = naming::flag_uid(&check_name);
    (check_name, uid)
}

/// A comment to post on a pull request.
pub(crate) async fn post_comment(
    conn: &mut PgConnection,
    d: &Decisions,
    key: &str,
    project_url: &str,
    pr_number: i64,
    text: &str,
) -> Result<bool, sqlx::Error> {
    let created = jobs::enqueue(
        &mut *conn,
        &NewJob {
            kind: JobKind::PostComment,
            dedup_key: format!("post-comment:{key}"),
            payload: json!({"project_url": project_url, "pr": pr_number, "text": text}),
            event_id: Some(d.event_id),
            pipeline_id: None,
        },
    )
    .await?;
    Ok(created.is_some())
}

/// Seconds since the epoch as a time.
pub(crate) fn epoch(seconds: Option<f64>) -> Option<chrono::DateTime<chrono::Utc>> {
    let seconds = seconds?;
    #[expect(
        clippy::cast_possible_truncation,
        reason = "Koji times are seconds with a fraction"
    )]
    chrono::DateTime::from_timestamp(seconds.trunc() as i64, (seconds.fract() * 1e9) as u32)
}
