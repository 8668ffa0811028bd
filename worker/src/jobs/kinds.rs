//! What each kind of job does. Every job that creates something outside
//! stores the id the service returned before anything else, and checks for
//! it before calling again, so a retry or a takeover never creates it twice.
//! What a job finds out that the flows must decide on (a Koji task's state, a
//! Testing Farm request, a fact) is recorded as an internal event, and the
//! decider takes it from there.

use std::sync::Arc;

use clients::distgit::{DistGit, Flag, Written};
use clients::eln::PackageLists;
use clients::fas::Fas;
use clients::koji::{self, Koji};
use clients::testing_farm::{self, TestingFarm};
use clients::{ClientError, DryRunRequest};
use events::typed;
use serde_json::{Value, json};
use store::events::Source;
use store::jobs::{ClaimedJob, JobKind};

/// The external services, as the jobs use them.
#[derive(Clone)]
pub struct Services {
    pub koji: Arc<dyn Koji>,
    pub testing_farm: Arc<dyn TestingFarm>,
    pub distgit: Arc<dyn DistGit>,
    pub fas: Arc<dyn Fas>,
    pub eln_lists: Arc<dyn PackageLists>,
    /// The composes Testing Farm offers, read once in a while.
    pub composes: Arc<Composes>,
}

/// The composes of Testing Farm's public ranch (`GET /composes/public`),
/// kept for [`Composes::KEEP`]: a test run is submitted only for a compose
/// on that list (REFERENCE: "check against `GET /composes/public`"), so a
/// branch Testing Farm cannot provision, such as a release not yet branched
/// there, ends with a flag that says so instead of a request that fails later.
#[derive(Debug, Default)]
pub struct Composes {
    read: tokio::sync::Mutex<Option<(std::time::Instant, Vec<String>)>>,
}

impl Composes {
    /// How long a read list is used.
    pub const KEEP: std::time::Duration = std::time::Duration::from_secs(3600);

    /// The list, read again when older than [`Composes::KEEP`].
    async fn list(&self, testing_farm: &dyn TestingFarm) -> Result<Vec<String>, ClientError> {
        let mut read = self.read.lock().await;
        if let Some((at, list)) = read.as_ref()
            && at.elapsed() < Self::KEEP
        {
            return Ok(list.clone());
        }
        let list = testing_farm.composes("public").await?;
        *read = Some((std::time::Instant::now(), list.clone()));
        Ok(list)
    }
}

/// Why a job's attempt failed.
#[derive(Debug)]
pub enum JobError {
    /// An external service failed in a way that may pass: retry later.
    Service(ClientError),
    /// The database is away: retry later, and it is not the service's fault.
    Database(sqlx::Error),
    /// The job cannot succeed (bad payload, a record gone).
    Permanent(String),
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Service(error) => error.fmt(f),
            JobError::Database(error) => write!(f, "database: {error}"),
            JobError::Permanent(message) => f.write_str(message),
        }
    }
}

impl From<ClientError> for JobError {
    fn from(error: ClientError) -> Self {
        JobError::Service(error)
    }
}

impl From<sqlx::Error> for JobError {
    fn from(error: sqlx::Error) -> Self {
        JobError::Database(error)
    }
}

type Outcome = Result<Value, JobError>;

fn field<'a>(job: &'a ClaimedJob, key: &str) -> Result<&'a Value, JobError> {
    job.payload
        .get(key)
        .filter(|v| !v.is_null())
        .ok_or_else(|| JobError::Permanent(format!("the job's payload has no {key}")))
}

fn int(job: &ClaimedJob, key: &str) -> Result<i64, JobError> {
    field(job, key)?
        .as_i64()
        .ok_or_else(|| JobError::Permanent(format!("the job's {key} is not an integer")))
}

fn text<'a>(job: &'a ClaimedJob, key: &str) -> Result<&'a str, JobError> {
    field(job, key)?
        .as_str()
        .ok_or_else(|| JobError::Permanent(format!("the job's {key} is not a string")))
}

fn dry_run(request: &DryRunRequest) -> Value {
    json!({"dry_run": request})
}

/// Do one job.
pub async fn execute(pool: &store::PgPool, services: &Services, job: &ClaimedJob) -> Outcome {
    let Some(kind) = JobKind::parse(&job.kind) else {
        return Err(JobError::Permanent(format!(
            "unknown job kind {:?}",
            job.kind
        )));
    };
    match kind {
        JobKind::SubmitScratchBuild => submit_scratch_build(pool, services, job).await,
        JobKind::CancelKojiTask => cancel_koji_task(pool, services, job).await,
        JobKind::PollKojiTask => poll_koji_task(pool, services, job).await,
        JobKind::SubmitTestingFarm => submit_testing_farm(pool, services, job).await,
        JobKind::CancelTestingFarm => cancel_testing_farm(pool, services, job).await,
        JobKind::FetchTestingFarm => fetch_testing_farm(pool, services, job).await,
        JobKind::SetFlag => set_flag(pool, services, job).await,
        JobKind::PostComment => post_comment(services, job).await,
        JobKind::LookupFact => lookup_fact(pool, services, job).await,
        JobKind::FetchElnPackages => fetch_eln_packages(pool, services, job).await,
    }
}

async fn submit_scratch_build(
    pool: &store::PgPool,
    services: &Services,
    job: &ClaimedJob,
) -> Outcome {
    let build_id = int(job, "koji_build_id")?;
    let Some(build) = store::flows::koji_build(pool, build_id).await? else {
        return Err(JobError::Permanent(format!(
            "Koji build {build_id} does not exist"
        )));
    };
    if let Some(task) = build.task_id {
        return Ok(json!({"task_id": task, "note": "already submitted"}));
    }
    if build.superseded || !matches!(build.status.as_str(), "pending" | "running") {
        return Ok(
            json!({"note": format!("not submitted: the build is {} ({})",
            build.status, if build.superseded { "superseded" } else { "ended" })}),
        );
    }
    match services
        .koji
        .submit_scratch_build(&build.source_url, &build.target)
        .await?
    {
        koji::Submitted::Task { id } => {
            // The id first: a crash after this line never submits again.
            let mut tx = pool.begin().await?;
            store::flows::set_build_task(&mut *tx, build_id, id).await?;
            store::events::insert_internal(
                &mut *tx,
                &format!("koji-task-submitted:{id}"),
                typed::TOPIC_KOJI_TASK_POLLED,
                &json!({
                    "id": id,
                    "old": null,
                    "new": "FREE",
                    "method": "build",
                    "info": {
                        "id": id,
                        "state": 0,
                        "method": "build",
                        "request": [build.source_url, build.target, {"scratch": true}],
                    },
                }),
                Source::Internal,
            )
            .await?;
            tx.commit().await?;
            crate::packit_metrics::koji_build_queued();
            // Superseded while it was being submitted: stop it at once.
            if let Some(now) = store::flows::koji_build(pool, build_id).await?
                && now.superseded
            {
                services.koji.cancel_task(id).await?;
                return Ok(json!({"task_id": id, "note": "superseded while submitting; canceled"}));
            }
            Ok(json!({"task_id": id}))
        }
        koji::Submitted::DryRun(request) => {
            store::flows::note_build(
                pool,
                build_id,
                "dry-run: the submission was recorded, not sent",
            )
            .await?;
            Ok(dry_run(&request))
        }
    }
}

async fn cancel_koji_task(pool: &store::PgPool, services: &Services, job: &ClaimedJob) -> Outcome {
    let build_id = int(job, "koji_build_id")?;
    let Some(build) = store::flows::koji_build(pool, build_id).await? else {
        return Err(JobError::Permanent(format!(
            "Koji build {build_id} does not exist"
        )));
    };
    let Some(task) = build.task_id else {
        // Its submit job sees the build superseded and cancels what it submits.
        return Ok(json!({"note": "never submitted"}));
    };
    match services.koji.cancel_task(task).await? {
        Some(request) => Ok(dry_run(&request)),
        None => Ok(json!({"canceled_task": task})),
    }
}

async fn poll_koji_task(pool: &store::PgPool, services: &Services, job: &ClaimedJob) -> Outcome {
    let task_id = int(job, "task_id")?;
    let Some(info) = services.koji.task_info(task_id).await? else {
        return Err(JobError::Permanent(format!(
            "Koji does not know task {task_id}"
        )));
    };
    let children = services.koji.task_children(task_id).await?;
    let mut raw = info.raw.clone();
    raw["children"] = Value::Array(children.iter().map(|c| c.raw.clone()).collect());
    raw["request"] = Value::Array(info.request.clone());
    let body = json!({
        "id": task_id,
        "old": null,
        "new": info.state.name(),
        "method": info.method,
        "info": raw,
    });
    store::events::insert_internal(
        pool,
        &format!("koji-task-poll:{task_id}:{}", job.id),
        typed::TOPIC_KOJI_TASK_POLLED,
        &body,
        Source::Internal,
    )
    .await?;
    Ok(json!({"state": info.state.name()}))
}

async fn submit_testing_farm(
    pool: &store::PgPool,
    services: &Services,
    job: &ClaimedJob,
) -> Outcome {
    let run_id = int(job, "test_run_id")?;
    let Some(run) = store::flows::run_to_submit(pool, run_id).await? else {
        return Err(JobError::Permanent(format!(
            "test run {run_id} does not exist"
        )));
    };
    if let Some(request) = run.request_id {
        return Ok(json!({"request_id": request, "note": "already submitted"}));
    }
    if run.superseded || run.state != "new" {
        return Ok(json!({"note": format!("not submitted: the run is {}", run.state)}));
    }
    if !services.testing_farm.dry_run()
        && let Some(compose) = run
            .payload
            .pointer("/environments/0/os/compose")
            .and_then(Value::as_str)
    {
        let listed = services
            .composes
            .list(services.testing_farm.as_ref())
            .await?;
        if !listed.iter().any(|c| c == compose) {
            return Err(JobError::Permanent(format!(
                "the compose {compose} is not available in the public Testing Farm infrastructure"
            )));
        }
    }
    let submitted = services.testing_farm.submit(&run.payload).await;
    // Packit counts a run queued at its first try, whatever Testing Farm says.
    // A first attempt cut short by a shutdown is handed back as the first
    // again, and counted when it does call.
    if job.attempts == 1 && !matches!(submitted, Ok(testing_farm::Submitted::DryRun(_))) {
        crate::packit_metrics::test_run_queued();
    }
    match submitted? {
        testing_farm::Submitted::Request { id } => {
            // The id first: a crash after this line never submits again.
            // A gating test's CI messages start from here: queued.
            let mut tx = pool.begin().await?;
            store::flows::set_run_request(&mut *tx, run_id, &id).await?;
            if store::gating::is_gating_run(&mut *tx, run_id).await? {
                store::events::insert_internal(
                    &mut *tx,
                    &format!("testing-farm-submitted:{id}"),
                    typed::TOPIC_TF_SUBMITTED,
                    &json!({"test_run_id": run_id, "request_id": id}),
                    Source::Internal,
                )
                .await?;
            }
            tx.commit().await?;
            if let Some(now) = store::flows::run_to_submit(pool, run_id).await?
                && (now.superseded || now.state != "new")
            {
                services.testing_farm.cancel(&id).await?;
                return Ok(json!({"request_id": id, "note": "ended while submitting; canceled"}));
            }
            Ok(json!({"request_id": id}))
        }
        testing_farm::Submitted::DryRun(request) => {
            store::flows::note_run(pool, run_id, "dry-run: the request was recorded, not sent")
                .await?;
            Ok(dry_run(&request))
        }
    }
}

async fn cancel_testing_farm(
    pool: &store::PgPool,
    services: &Services,
    job: &ClaimedJob,
) -> Outcome {
    let run_id = int(job, "test_run_id")?;
    let Some(run) = store::flows::run_to_submit(pool, run_id).await? else {
        return Err(JobError::Permanent(format!(
            "test run {run_id} does not exist"
        )));
    };
    let Some(request) = run.request_id else {
        return Ok(json!({"note": "never submitted"}));
    };
    match services.testing_farm.cancel(&request).await? {
        Some(dry) => Ok(dry_run(&dry)),
        None => Ok(json!({"canceled_request": request})),
    }
}

async fn fetch_testing_farm(
    pool: &store::PgPool,
    services: &Services,
    job: &ClaimedJob,
) -> Outcome {
    let request_id = text(job, "request_id")?;
    let request = services.testing_farm.get(request_id).await?;
    let state = request
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    store::events::insert_internal(
        pool,
        &format!("testing-farm-read:{request_id}:{}", job.id),
        typed::TOPIC_TF_REQUEST,
        &request,
        Source::Internal,
    )
    .await?;
    Ok(json!({"state": state}))
}

async fn set_flag(pool: &store::PgPool, services: &Services, job: &ClaimedJob) -> Outcome {
    let flag_id = int(job, "flag_id")?;
    let Some(flag) = store::flows::flag_to_send(pool, flag_id).await? else {
        return Err(JobError::Permanent(format!(
            "flag {flag_id} does not exist"
        )));
    };
    if flag.sent_version >= flag.version {
        return Ok(
            json!({"note": format!("version {} is already on the pull request", flag.sent_version)}),
        );
    }
    // Always the newest state: a job that runs late cannot send an older one.
    let written = services
        .distgit
        .set_pr_flag(
            &flag.project_url,
            flag.pr_number,
            &Flag {
                username: flag.check_name.clone(),
                status: flag.status.clone(),
                comment: flag.comment.clone(),
                url: flag.url.clone(),
                uid: flag.uid.clone(),
            },
        )
        .await?;
    store::flows::flag_sent(pool, flag_id, flag.version).await?;
    if matches!(written, Written::Done)
        && flag.status == "pending"
        && let Some(event_id) = job.event_id
    {
        // The flag is set: what is left is counting it, which must not
        // make the job try again.
        match store::events::initial_status_set(pool, event_id).await {
            Ok(Some(seconds)) => crate::packit_metrics::first_initial_status(seconds),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, event_id, "cannot count the first initial status"),
        }
    }
    match written {
        Written::Done => Ok(json!({"sent_version": flag.version, "status": flag.status})),
        Written::DryRun(request) => Ok(dry_run(&request)),
    }
}

async fn post_comment(services: &Services, job: &ClaimedJob) -> Outcome {
    let project_url = text(job, "project_url")?;
    let pr = int(job, "pr")?;
    let body = text(job, "text")?;
    match services
        .distgit
        .post_pr_comment(project_url, pr, body)
        .await?
    {
        Written::Done => Ok(json!({"posted": true})),
        Written::DryRun(request) => Ok(dry_run(&request)),
    }
}

async fn lookup_fact(pool: &store::PgPool, services: &Services, job: &ClaimedJob) -> Outcome {
    let key = text(job, "fact")?;
    let detail = field(job, "detail")?;
    let get = |name: &str| {
        detail
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| JobError::Permanent(format!("the fact's detail has no {name}")))
    };
    let value: Value = match get("kind")? {
        "branch-exists" => Value::Bool(
            services
                .distgit
                .branch_exists(get("project_url")?, get("branch")?)
                .await?,
        ),
        "file-exists" => Value::Bool(
            services
                .distgit
                .file_exists(get("project_url")?, get("sha")?, get("path")?)
                .await?,
        ),
        "group-member" => Value::Bool(services.fas.is_member(get("user")?, get("group")?).await?),
        "koji-build" => {
            let build_id = detail
                .get("build_id")
                .and_then(Value::as_i64)
                .ok_or_else(|| JobError::Permanent("the fact's detail has no build_id".into()))?;
            koji_build_fact(services, build_id).await?
        }
        other => {
            return Err(JobError::Permanent(format!(
                "unknown kind of fact {other:?}"
            )));
        }
    };
    store::events::insert_internal(
        pool,
        &format!("fact:{key}:{}", job.id),
        typed::TOPIC_FACT,
        &json!({"key": key, "value": value}),
        Source::Internal,
    )
    .await?;
    Ok(json!({"value": value}))
}

/// Fetch every ELN package list and keep their union as the new list, or,
/// when one of them fails, record the failure and keep the last good list:
/// a list missing a part would end the ELN builds of that part's packages
/// without anyone noticing. A failure is not retried here (the job is done,
/// the periodic pass asks again in the next period), but a database error is.
async fn fetch_eln_packages(
    pool: &store::PgPool,
    services: &Services,
    job: &ClaimedJob,
) -> Outcome {
    let urls: Vec<String> = field(job, "urls")?
        .as_array()
        .map(|urls| {
            urls.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if urls.is_empty() {
        return Err(JobError::Permanent("the job names no list to fetch".into()));
    }
    let mut packages = std::collections::BTreeSet::new();
    let mut sources = Vec::with_capacity(urls.len());
    for url in &urls {
        match services.eln_lists.fetch(url).await {
            Ok(names) => {
                sources.push(store::eln::ListSource {
                    url: clients::eln::display_url(url),
                    count: i64::try_from(names.len()).unwrap_or(i64::MAX),
                });
                packages.extend(names);
            }
            Err(error) => {
                let failure = store::eln::Failure {
                    at: chrono::Utc::now(),
                    url: clients::eln::display_url(url),
                    error: error.to_string(),
                };
                store::eln::store_failure(pool, &failure).await?;
                metrics::counter!("fedora_ci_eln_packages_fetches_total", "outcome" => "failed")
                    .increment(1);
                tracing::warn!(url = %failure.url, error = %failure.error,
                    "cannot fetch an ELN package list; the last good list stays");
                return Ok(json!({"failed": {"url": failure.url, "error": failure.error}}));
            }
        }
    }
    let packages: Vec<String> = packages.into_iter().collect();
    store::eln::store_list(pool, &packages, &sources, chrono::Utc::now()).await?;
    metrics::counter!("fedora_ci_eln_packages_fetches_total", "outcome" => "ok").increment(1);
    tracing::info!(packages = packages.len(), "fetched the ELN package lists");
    Ok(json!({"packages": packages.len(), "sources": sources}))
}

/// What Koji knows of an official build: its task, the task's target, its
/// source (with the commit) and who built it; `false` if Koji has no such build.
async fn koji_build_fact(services: &Services, build_id: i64) -> Result<Value, JobError> {
    let Some(build) = services.koji.build(&build_id.to_string()).await? else {
        return Ok(Value::Bool(false));
    };
    let task_id = build.get("task_id").and_then(Value::as_i64);
    let mut source = build
        .get("source")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut target = None;
    if let Some(task_id) = task_id
        && let Some(task) = services.koji.task_info(task_id).await?
    {
        source = source.or_else(|| {
            task.request
                .first()
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        target = task
            .request
            .get(1)
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    // Current hubs give the times as seconds in `*_ts` (and dates in `*_time`); older ones
    // give seconds in `*_time`.
    let seconds = |ts: &str, time: &str| {
        build
            .get(ts)
            .and_then(Value::as_f64)
            .or_else(|| build.get(time).and_then(Value::as_f64))
    };
    Ok(json!({
        "build_id": build_id,
        "task_id": task_id,
        "nvr": build.get("nvr"),
        "owner": build.get("owner_name"),
        "source": source,
        "target": target,
        "started": seconds("start_ts", "start_time").or_else(|| seconds("creation_ts", "creation_time")),
        "completed": seconds("completion_ts", "completion_time"),
    }))
}
