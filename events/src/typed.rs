//! Typed events: what a recorded message means to Fedora CI.
//!
//! [`parse`] turns the topic and body of an inbox row into an [`Event`]; the
//! raw JSON goes no further than this module. A topic no flow knows gives
//! [`Event::Unhandled`]; a known topic whose body lacks what the flow needs
//! gives a [`ParseError`] naming the missing field, which the decider records
//! as the reason the event failed.
//!
//! Besides the bus topics, the service writes a few events of its own into
//! the inbox (topic prefix [`INTERNAL_PREFIX`]): Testing Farm webhook
//! notifications, Testing Farm request states read by a job, Koji task
//! states read by a poll, and facts a job looked up. They go through the
//! same decisions as bus messages, so every change of state has an event and
//! a recorded reason.

use std::fmt;

use serde_json::{Map, Value};

use crate::states::{KojiBuildState, KojiTaskState, TestingFarmResult, TestingFarmState};

/// Topic prefix of the events the service records itself.
pub const INTERNAL_PREFIX: &str = "fedora-ci-worker.";

/// Internal topic of a Testing Farm webhook call (`{request_id}`).
pub const TOPIC_TF_NOTIFICATION: &str = "fedora-ci-worker.testing-farm.notification";
/// Internal topic of a Testing Farm request the service submitted for a
/// gating test (`{test_run_id, request_id}`), recorded with its id.
pub const TOPIC_TF_SUBMITTED: &str = "fedora-ci-worker.testing-farm.submitted";
/// Internal topic of a Testing Farm request as `GET /requests/{id}` returned it.
pub const TOPIC_TF_REQUEST: &str = "fedora-ci-worker.testing-farm.request";
/// Internal topic of a Koji task as a poll read it (the body has the shape of
/// a `buildsys.task.state.change` message).
pub const TOPIC_KOJI_TASK_POLLED: &str = "fedora-ci-worker.buildsys.task.state.change";
/// Internal topic of a fact a job looked up (`{key, value}`).
pub const TOPIC_FACT: &str = "fedora-ci-worker.fact";
/// Internal topic of a job that gave up (`{job_id, kind, payload, error}`).
pub const TOPIC_JOB_DEAD: &str = "fedora-ci-worker.job.dead";
/// Internal topic of an operator canceling a pipeline (`{pipeline_id}`).
pub const TOPIC_CANCEL_PIPELINE: &str = "fedora-ci-worker.operator.cancel-pipeline";
/// Internal topic of a build or test run that had no result in time
/// (`{subject: "koji-build" | "test-run", id, after_seconds}`).
pub const TOPIC_TIMEOUT: &str = "fedora-ci-worker.timeout";

/// A Koji task id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KojiTaskId(pub i64);

impl fmt::Display for KojiTaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A full git commit hash: 40 lowercase hexadecimal digits, as Pagure and
/// Koji write them. Only [`CommitSha::parse`] makes one, so a value of this
/// type is safe to put into a URL path, a Koji source URL or a flag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitSha(String);

impl CommitSha {
    /// `text` as a commit hash, or `None` when it is not one.
    pub fn parse(text: &str) -> Option<CommitSha> {
        is_commit_sha(text).then(|| CommitSha(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 7-character form used in check names.
    pub fn short(&self) -> &str {
        self.0.get(..7).unwrap_or(&self.0)
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `text` is a full commit hash (`^[0-9a-f]{40}$`). Anything else
/// taken from a message (a branch name, `..`, a short hash) must not reach a
/// URL, a Koji source URL or a flag.
pub fn is_commit_sha(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The longest name Pagure stores (its `name` and `user` columns).
const MAX_NAME_LEN: usize = 255;

/// Whether `name` is a valid Pagure namespace, project or user name, and so
/// one path segment of a dist-git URL.
///
/// Pagure's `PROJECT_NAME_REGEX` is `^[a-zA-z0-9_][a-zA-Z0-9-_.+]*$`: dist-git
/// package names use `+` (`libstdc++`), `.` (`python3.12`), `_` and `-`. FAS
/// user names (fork owners) use a subset of the same characters. The first
/// character can be neither `.` nor `-`, which rules out `.` and `..` (the
/// `url` crate drops those segments, so a flag would go to another project)
/// and option-like names; `/`, `?`, `#`, `%`, whitespace and control
/// characters are not allowed anywhere.
pub fn is_pagure_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    name.len() <= MAX_NAME_LEN
        && (first.is_ascii_alphanumeric() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
}

/// The names in a dist-git project URL, as [`project_names`] reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectNames<'a> {
    pub fork_owner: Option<&'a str>,
    pub namespace: &'a str,
    pub repo: &'a str,
}

/// Why a URL names no dist-git project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectUrlError {
    /// Not `<base>/<ns>/<repo>` or a fork of one (another forge, another shape).
    NotUnderBase,
    /// The right shape, but `name` (the `part`: fork owner, namespace or
    /// repository) is not a Pagure name ([`is_pagure_name`]).
    InvalidName { part: &'static str, name: String },
}

/// Reads a project URL as messages give it: `<base>/<ns>/<repo>`, or a fork
/// as `<base>/fork/<user>/<ns>/<repo>` (web) or `<base>/forks/<user>/<ns>/<repo>`
/// (git), each with or without a trailing `.git` or `/`. Every name must be a
/// Pagure name: the names become path segments of API URLs, Koji source URLs
/// and flags, where `.` and `..` would silently name another project.
pub fn project_names<'a>(base: &str, url: &'a str) -> Result<ProjectNames<'a>, ProjectUrlError> {
    let base = base.trim().trim_end_matches('/');
    let url = url.trim().trim_end_matches('/');
    let url = url
        .strip_suffix(".git")
        .unwrap_or(url)
        .trim_end_matches('/');
    let path = url
        .strip_prefix(base)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|_| !base.is_empty())
        .ok_or(ProjectUrlError::NotUnderBase)?;
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(ProjectUrlError::NotUnderBase);
    }
    let (fork_owner, namespace, repo) = match segments.as_slice() {
        ["fork" | "forks", owner, namespace, repo] => (Some(*owner), *namespace, *repo),
        [namespace, repo] if *namespace != "fork" && *namespace != "forks" => {
            (None, *namespace, *repo)
        }
        _ => return Err(ProjectUrlError::NotUnderBase),
    };
    let names = [
        ("fork owner", fork_owner),
        ("namespace", Some(namespace)),
        ("repository", Some(repo)),
    ];
    for (part, name) in names {
        if let Some(name) = name.filter(|name| !is_pagure_name(name)) {
            return Err(ProjectUrlError::InvalidName {
                part,
                name: name.to_owned(),
            });
        }
    }
    Ok(ProjectNames {
        fork_owner,
        namespace,
        repo,
    })
}

/// Why a message of a known topic cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{topic}: {problem}")]
pub struct ParseError {
    pub topic: String,
    pub problem: String,
}

/// What a pull-request message says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrAction {
    Opened,
    Updated,
    Rebased,
    Reopened,
    Closed,
}

impl PrAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PrAction::Opened => "opened",
            PrAction::Updated => "updated",
            PrAction::Rebased => "rebased",
            PrAction::Reopened => "reopened",
            PrAction::Closed => "closed",
        }
    }
}

/// A repository as a Pagure message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// `full_url`, e.g. `https://src.fedoraproject.org/fork/zbyszek/rpms/optee_os`;
    /// missing in some pushes, where only namespace and name are given.
    pub full_url: Option<String>,
    /// `rpms`, `tests`, ...
    pub namespace: String,
    pub name: String,
    /// For a fork, the user who owns it.
    pub fork_owner: Option<String>,
}

/// A pull request as its messages carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// The number in the project (`id`).
    pub number: i64,
    /// Pagure's own unique id of the pull request.
    pub uid: Option<String>,
    pub title: String,
    pub author: String,
    /// `Open`, `Closed` or `Merged`.
    pub status: String,
    /// The branch it targets (`branch`).
    pub target_branch: String,
    /// The branch it comes from (`branch_from`).
    pub source_branch: String,
    /// The head commit (`commit_stop`).
    pub head: CommitSha,
    pub url: Option<String>,
    /// `last_updated`, seconds since the epoch: orders messages of one pull request.
    pub last_updated: Option<i64>,
    /// The target project.
    pub project: Repo,
    /// Where the commits come from: a fork, or the project itself.
    pub source: Repo,
}

/// A pull-request comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: i64,
    pub author: String,
    pub text: String,
}

/// A push to a dist-git branch (`pagure.git.receive`, `git.receive`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub repo: Repo,
    pub branch: String,
    /// The new head of the branch.
    pub head: CommitSha,
    /// The head before the push, when the message says.
    pub old: Option<CommitSha>,
    pub pusher: Option<String>,
    pub forced: bool,
    pub total_commits: Option<i64>,
    /// Set when the push merged a pull request (Pagure says which).
    pub pull_request: Option<i64>,
    pub summary: Option<String>,
}

/// A Koji task changed state (`buildsys.task.state.change`, or a poll).
#[derive(Debug, Clone, PartialEq)]
pub struct KojiTask {
    pub id: KojiTaskId,
    pub method: Option<String>,
    pub owner: Option<String>,
    pub old: Option<KojiTaskState>,
    pub new: KojiTaskState,
    /// `info.request[0]`: the source (git URL with commit, or an uploaded SRPM).
    pub source: Option<String>,
    /// `info.request[1]`.
    pub target: Option<String>,
    /// `info.request[2].scratch`.
    pub scratch: Option<bool>,
    /// `info.start_time` / `info.completion_time`, seconds since the epoch.
    pub started: Option<f64>,
    pub completed: Option<f64>,
    /// The per-architecture `buildArch` subtasks, for log links.
    pub arch_tasks: Vec<(KojiTaskId, String)>,
}

/// A Koji build changed state (`buildsys.build.state.change`).
#[derive(Debug, Clone, PartialEq)]
pub struct KojiBuild {
    pub build_id: i64,
    pub task_id: Option<KojiTaskId>,
    pub name: String,
    pub version: String,
    pub release: String,
    pub owner: Option<String>,
    pub old: Option<KojiBuildState>,
    pub new: KojiBuildState,
    /// `request[0]`, e.g. `git+https://src.fedoraproject.org/rpms/python-ogr.git#e029dd5...`.
    pub source: Option<String>,
    pub target: Option<String>,
    /// When the build started (`start_time`, else `creation_time`) and ended
    /// (`completion_time`), seconds since the epoch; current messages give dates,
    /// older ones none.
    pub started: Option<f64>,
    pub completed: Option<f64>,
    /// The `buildArch` subtasks and their architectures, when the message
    /// carries the task (`task.children`).
    pub arch_tasks: Vec<(KojiTaskId, String)>,
}

impl KojiBuild {
    pub fn nvr(&self) -> String {
        format!("{}-{}-{}", self.name, self.version, self.release)
    }
}

/// A build was tagged (`buildsys.tag`); recorded, no flow acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KojiTag {
    pub tag: String,
    pub nvr: String,
}

/// Bodhi says an update's builds are ready for testing
/// (`bodhi.update.status.testing.koji-build-group.build.complete`).
///
/// Bodhi has sent three shapes of this message (`UpdateReadyForTestingV1` to
/// `V3` in the `bodhi-messages` package): the first two carry the release and
/// each build's component and issuer in `artifact`; the third only the builds'
/// ids, task ids and NVRs, with the rest under `update`. Both are read here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodhiUpdateReady {
    /// The update's alias, e.g. `FEDORA-2021-53a7dfa185`: the same in every
    /// shape and every announcement of the update (`artifact.id` is not: the
    /// first shape gives the bare alias, later ones `<alias>-<hash of the builds>`).
    pub update: String,
    /// The release as Bodhi names it (`f34`, `F43`, `EPEL-9`, `ELN`), if given.
    pub release: Option<String>,
    pub builds: Vec<UpdateBuild>,
    /// `re-trigger`: someone asked for the tests to run again.
    pub retrigger: bool,
    /// Who asked: `bodhi` on a push, the requester's name for a re-trigger.
    pub agent: Option<String>,
    /// The update's page.
    pub url: Option<String>,
}

/// One build of a Bodhi update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateBuild {
    /// Koji's build id.
    pub build_id: Option<i64>,
    /// The Koji task that built it; CI messages name the build by it.
    pub task_id: Option<i64>,
    pub nvr: String,
    /// The source package name (from the NVR when the message does not say).
    pub component: String,
    /// Who built it; the update's submitter when the message does not say.
    pub issuer: Option<String>,
}

/// A Testing Farm request as its API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestingFarmRequest {
    pub request_id: String,
    pub state: TestingFarmState,
    pub result: Option<TestingFarmResult>,
    pub summary: Option<String>,
    pub artifacts_url: Option<String>,
    /// `result.xunit_url`: the JUnit results, once the request has them.
    pub xunit_url: Option<String>,
}

/// What a timeout is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimedOutSubject {
    /// A row of `koji_builds`.
    KojiBuild,
    /// A row of `test_runs`.
    TestRun,
}

/// Everything the flows act on. One variant per kind of event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    PullRequest {
        action: PrAction,
        agent: Option<String>,
        pr: PullRequest,
    },
    PullRequestComment {
        pr: PullRequest,
        comment: Comment,
    },
    /// A flag was set on a pull request (by us or another CI): recorded, ignored.
    PullRequestFlag {
        pr_number: i64,
        username: String,
    },
    Push(Push),
    KojiTask(KojiTask),
    KojiBuild(KojiBuild),
    KojiTag(KojiTag),
    BodhiUpdateReady(BodhiUpdateReady),
    /// Testing Farm called the webhook for this request.
    TestingFarmNotification {
        request_id: String,
    },
    TestingFarmRequest(TestingFarmRequest),
    /// Testing Farm accepted a gating test's request.
    TestingFarmSubmitted {
        test_run_id: i64,
        request_id: String,
    },
    /// A job looked something up (`key` as the checkers name facts).
    Fact {
        key: String,
        value: Value,
    },
    /// A job gave up after its attempts, or at once on a permanent error.
    JobDead {
        job_id: i64,
        kind: String,
        payload: Value,
        error: String,
    },
    /// A build or a test run had no final result within its time limit.
    TimedOut {
        subject: TimedOutSubject,
        id: i64,
        after_seconds: i64,
    },
    /// An operator canceled a pipeline.
    CancelPipeline {
        pipeline_id: i64,
    },
    /// A message of pagure.io (`io.pagure.*`), the forge of upstream projects: it shares
    /// Pagure's message shapes with dist-git but none of its projects. `project` as the
    /// message names it; `topic` without its prefix.
    PagureIo {
        topic: String,
        project: Option<String>,
    },
    /// A topic no flow handles; `topic` without its environment prefix.
    Unhandled {
        topic: String,
    },
}

impl Event {
    /// The name of the kind, for logs, metrics and the decision log.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::PullRequest { .. } => "pull-request",
            Event::PullRequestComment { .. } => "pull-request-comment",
            Event::PullRequestFlag { .. } => "pull-request-flag",
            Event::Push(_) => "push",
            Event::KojiTask(_) => "koji-task",
            Event::KojiBuild(_) => "koji-build",
            Event::KojiTag(_) => "koji-tag",
            Event::BodhiUpdateReady(_) => "bodhi-update",
            Event::TestingFarmNotification { .. } => "testing-farm-notification",
            Event::TestingFarmRequest(_) => "testing-farm-request",
            Event::TestingFarmSubmitted { .. } => "testing-farm-submitted",
            Event::Fact { .. } => "fact",
            Event::JobDead { .. } => "job-dead",
            Event::TimedOut { .. } => "timed-out",
            Event::CancelPipeline { .. } => "cancel-pipeline",
            Event::PagureIo { .. } => "pagure-io",
            Event::Unhandled { .. } => "unhandled",
        }
    }
}

/// The topic without its environment prefix: `pagure.pull-request.new` for
/// `org.fedoraproject.prod.pagure.pull-request.new`, `testing-farm.request`
/// for the internal `fedora-ci-worker.testing-farm.request`.
pub fn short_topic(topic: &str) -> &str {
    if let Some(rest) = topic.strip_prefix(INTERNAL_PREFIX) {
        return rest;
    }
    for prefix in ["org.fedoraproject.", "org.centos.", "io.pagure."] {
        if let Some(rest) = topic.strip_prefix(prefix) {
            // The environment (prod, stg, dev, ...) comes next.
            return rest.split_once('.').map_or(rest, |(_, rest)| rest);
        }
    }
    topic
}

/// The environment a Fedora bus topic comes from: `prod` for
/// `org.fedoraproject.prod.pagure.pull-request.new`, `stg` for `io.pagure.stg...`; `None` for
/// our internal topics and topics without one.
pub fn topic_environment(topic: &str) -> Option<&str> {
    ["org.fedoraproject.", "org.centos.", "io.pagure."]
        .into_iter()
        .find_map(|prefix| topic.strip_prefix(prefix))
        .and_then(|rest| rest.split_once('.'))
        .map(|(environment, _)| environment)
}

/// Whether a topic is pagure.io's own (`io.pagure.<env>.pagure...`): the forge of
/// upstream projects, which shares Pagure's message shapes with dist-git but none of
/// its projects.
pub fn is_pagure_io(topic: &str) -> bool {
    topic.starts_with("io.pagure.")
}

/// The project a Pagure message is about, as the message names it (`fullname`,
/// else `namespace/name`, else `name`), from its pull request, issue, repository
/// or project; `None` when it names none.
pub fn pagure_project_name(body: &Value) -> Option<String> {
    let candidates = [
        body.pointer("/pullrequest/project"),
        body.pointer("/issue/project"),
        body.get("project"),
        body.get("repo"),
    ];
    candidates.into_iter().flatten().find_map(|project| {
        let project = project.as_object()?;
        let name = |key: &str| text(project, key).filter(|s| !s.trim().is_empty());
        name("fullname").or_else(|| match (name("namespace"), name("name")) {
            (Some(namespace), Some(repo)) => Some(format!("{namespace}/{repo}")),
            (None, Some(repo)) => Some(repo),
            _ => None,
        })
    })
}

/// Read an inbox row's topic and body as an [`Event`].
pub fn parse(topic: &str, body: &Value) -> Result<Event, ParseError> {
    let internal = topic.starts_with(INTERNAL_PREFIX);
    let short = short_topic(topic);
    let fail = |problem: String| ParseError {
        topic: short.to_owned(),
        problem,
    };
    if is_pagure_io(topic) {
        // Read as dist-git messages, they would name projects that do not exist there.
        return Ok(Event::PagureIo {
            topic: short.to_owned(),
            project: pagure_project_name(body),
        });
    }
    let Some(body) = body.as_object() else {
        return Err(fail("the body is not a JSON object".into()));
    };
    let reader = Reader { body, fail: &fail };
    let event = match short {
        "pagure.pull-request.new" => pull_request(&reader, PrAction::Opened)?,
        "pagure.pull-request.updated" => pull_request(&reader, PrAction::Updated)?,
        "pagure.pull-request.rebased" => pull_request(&reader, PrAction::Rebased)?,
        "pagure.pull-request.reopened" => pull_request(&reader, PrAction::Reopened)?,
        "pagure.pull-request.closed" => pull_request(&reader, PrAction::Closed)?,
        "pagure.pull-request.comment.added" => comment(&reader)?,
        t if t.starts_with("pagure.pull-request.flag.") => {
            let pr = reader.object("pullrequest")?;
            let flag = reader.object("flag")?;
            Event::PullRequestFlag {
                pr_number: int(pr, "id").ok_or_else(|| fail("pullrequest.id is missing".into()))?,
                username: text(flag, "username").unwrap_or_default(),
            }
        }
        "pagure.git.receive" => Event::Push(pagure_push(&reader)?),
        "git.receive" => Event::Push(distgit_push(&reader)?),
        "buildsys.task.state.change" => Event::KojiTask(koji_task(&reader)?),
        "buildsys.build.state.change" => Event::KojiBuild(koji_build(&reader)?),
        "buildsys.tag" => Event::KojiTag(KojiTag {
            tag: reader.text("tag")?,
            nvr: format!(
                "{}-{}-{}",
                reader.text("name")?,
                reader.text("version")?,
                reader.text("release")?
            ),
        }),
        "bodhi.update.status.testing.koji-build-group.build.complete" => bodhi(&reader)?,
        "testing-farm.notification" if internal => Event::TestingFarmNotification {
            request_id: reader.text("request_id")?,
        },
        "testing-farm.request" if internal => Event::TestingFarmRequest(testing_farm(&reader)?),
        "testing-farm.submitted" if internal => Event::TestingFarmSubmitted {
            test_run_id: reader.int("test_run_id")?,
            request_id: reader.text("request_id")?,
        },
        "fact" if internal => Event::Fact {
            key: reader.text("key")?,
            value: body.get("value").cloned().unwrap_or(Value::Null),
        },
        "job.dead" if internal => Event::JobDead {
            job_id: reader.int("job_id")?,
            kind: reader.text("kind")?,
            payload: body.get("payload").cloned().unwrap_or(Value::Null),
            error: text(body, "error").unwrap_or_default(),
        },
        "operator.cancel-pipeline" if internal => Event::CancelPipeline {
            pipeline_id: reader.int("pipeline_id")?,
        },
        "timeout" if internal => Event::TimedOut {
            subject: match reader.text("subject")?.as_str() {
                "koji-build" => TimedOutSubject::KojiBuild,
                "test-run" => TimedOutSubject::TestRun,
                other => {
                    return Err(fail(format!(
                        "subject {other:?} is not koji-build or test-run"
                    )));
                }
            },
            id: reader.int("id")?,
            after_seconds: reader.int("after_seconds")?,
        },
        other => Event::Unhandled {
            topic: other.to_owned(),
        },
    };
    Ok(event)
}

/// Field access that names what is missing.
struct Reader<'a, F: Fn(String) -> ParseError> {
    body: &'a Map<String, Value>,
    fail: &'a F,
}

impl<F: Fn(String) -> ParseError> Reader<'_, F> {
    fn object(&self, key: &str) -> Result<&Map<String, Value>, ParseError> {
        self.body
            .get(key)
            .and_then(Value::as_object)
            .ok_or_else(|| (self.fail)(format!("{key} is missing or not an object")))
    }

    fn text(&self, key: &str) -> Result<String, ParseError> {
        text(self.body, key).ok_or_else(|| (self.fail)(format!("{key} is missing or not a string")))
    }

    fn int(&self, key: &str) -> Result<i64, ParseError> {
        int(self.body, key)
            .ok_or_else(|| (self.fail)(format!("{key} is missing or not an integer")))
    }

    fn in_object<'o>(
        &self,
        object: &'o Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Result<&'o Value, ParseError> {
        object
            .get(key)
            .filter(|v| !v.is_null())
            .ok_or_else(|| (self.fail)(format!("{path}.{key} is missing")))
    }
}

/// A commit hash from the message, or the reason the message is refused.
fn commit_sha<F: Fn(String) -> ParseError>(
    fail: &F,
    field: &str,
    text: &str,
) -> Result<CommitSha, ParseError> {
    CommitSha::parse(text).ok_or_else(|| {
        // A forged value can be long; the start is enough to recognise it.
        let shown: String = text.chars().take(64).collect();
        let more = if shown.len() < text.len() { "…" } else { "" };
        fail(format!(
            "{field} {shown:?}{more} is not a commit hash (40 lowercase hexadecimal digits)"
        ))
    })
}

fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// An integer, also when sent as a string of digits (Pagure sends times so).
fn int(object: &Map<String, Value>, key: &str) -> Option<i64> {
    match object.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A time of a Koji task, in seconds since the epoch. The bus (and older hubs) give the
/// seconds as `start_time`; current hubs' `getTaskInfo`, which our polls record, give
/// them as `start_ts` and `start_time` as a date (`2024-06-20 15:04:24.525136+00:00`).
fn koji_seconds(object: &Map<String, Value>, ts_key: &str, time_key: &str) -> Option<f64> {
    float(object, ts_key)
        .or_else(|| float(object, time_key))
        .or_else(|| koji_date(object.get(time_key)?.as_str()?))
}

/// A date as Koji writes one: with or without fractions of a second and an offset (none
/// means UTC), or in RFC 3339.
fn koji_date(text: &str) -> Option<f64> {
    let text = text.trim();
    let at = chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z")
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(text))
        .map(|at| at.to_utc())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                .map(|at| at.and_utc())
        })
        .ok()?;
    Some(at.timestamp_micros() as f64 / 1e6)
}

fn float(object: &Map<String, Value>, key: &str) -> Option<f64> {
    match object.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn repo(object: &Map<String, Value>) -> Option<Repo> {
    let parent = object.get("parent").filter(|p| !p.is_null());
    let fork_owner = parent.and_then(|_| {
        object
            .get("user")
            .and_then(Value::as_object)
            .and_then(|u| text(u, "name"))
    });
    Some(Repo {
        full_url: text(object, "full_url"),
        namespace: text(object, "namespace").unwrap_or_default(),
        name: text(object, "name")?,
        fork_owner,
    })
}

fn read_pull_request<F: Fn(String) -> ParseError>(
    reader: &Reader<'_, F>,
) -> Result<PullRequest, ParseError> {
    let pr = reader.object("pullrequest")?;
    let fail = reader.fail;
    let project = pr
        .get("project")
        .and_then(Value::as_object)
        .and_then(repo)
        .ok_or_else(|| fail("pullrequest.project is missing or has no name".into()))?;
    // Without repo_from (a PR from a remote git) the commits are still
    // fetched into the project, so the project is the source.
    let source = pr
        .get("repo_from")
        .and_then(Value::as_object)
        .and_then(repo)
        .unwrap_or_else(|| project.clone());
    let head = reader
        .in_object(pr, "pullrequest", "commit_stop")?
        .as_str()
        .ok_or_else(|| fail("pullrequest.commit_stop is not a string".into()))?;
    let head = commit_sha(fail, "pullrequest.commit_stop", head)?;
    Ok(PullRequest {
        number: int(pr, "id").ok_or_else(|| fail("pullrequest.id is missing".into()))?,
        uid: text(pr, "uid"),
        title: text(pr, "title").unwrap_or_default(),
        author: pr
            .get("user")
            .and_then(Value::as_object)
            .and_then(|u| text(u, "name"))
            .unwrap_or_default(),
        status: text(pr, "status").unwrap_or_else(|| "Open".into()),
        target_branch: text(pr, "branch")
            .ok_or_else(|| fail("pullrequest.branch is missing".into()))?,
        source_branch: text(pr, "branch_from").unwrap_or_default(),
        head,
        url: text(pr, "full_url"),
        last_updated: int(pr, "last_updated").or_else(|| int(pr, "updated_on")),
        project,
        source,
    })
}

fn pull_request<F: Fn(String) -> ParseError>(
    reader: &Reader<'_, F>,
    action: PrAction,
) -> Result<Event, ParseError> {
    Ok(Event::PullRequest {
        action,
        agent: text(reader.body, "agent"),
        pr: read_pull_request(reader)?,
    })
}

fn comment<F: Fn(String) -> ParseError>(reader: &Reader<'_, F>) -> Result<Event, ParseError> {
    let pr = read_pull_request(reader)?;
    let comments = reader
        .object("pullrequest")?
        .get("comments")
        .and_then(Value::as_array)
        .ok_or_else(|| (reader.fail)("pullrequest.comments is missing".into()))?;
    // The message carries every comment; the new one has the highest id.
    let newest = comments
        .iter()
        .filter_map(Value::as_object)
        .max_by_key(|c| int(c, "id").unwrap_or(i64::MIN))
        .ok_or_else(|| (reader.fail)("pullrequest.comments is empty".into()))?;
    let comment = Comment {
        id: int(newest, "id").ok_or_else(|| (reader.fail)("the comment has no id".into()))?,
        author: newest
            .get("user")
            .and_then(Value::as_object)
            .and_then(|u| text(u, "name"))
            .unwrap_or_default(),
        text: text(newest, "comment").unwrap_or_default(),
    };
    Ok(Event::PullRequestComment { pr, comment })
}

fn pagure_push<F: Fn(String) -> ParseError>(reader: &Reader<'_, F>) -> Result<Push, ParseError> {
    let repo =
        repo(reader.object("repo")?).ok_or_else(|| (reader.fail)("repo.name is missing".into()))?;
    Ok(Push {
        repo,
        branch: reader.text("branch")?,
        head: commit_sha(reader.fail, "end_commit", &reader.text("end_commit")?)?,
        old: text(reader.body, "old_commit")
            .map(|old| commit_sha(reader.fail, "old_commit", &old))
            .transpose()?,
        pusher: text(reader.body, "agent"),
        forced: reader
            .body
            .get("forced")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        total_commits: int(reader.body, "total_commits"),
        pull_request: int(reader.body, "pull_request_id"),
        summary: None,
    })
}

/// dist-git's own `git.receive` (and fedmsg's before it): one commit per message.
fn distgit_push<F: Fn(String) -> ParseError>(reader: &Reader<'_, F>) -> Result<Push, ParseError> {
    let commit = reader.object("commit")?;
    let field = |key: &str| {
        text(commit, key).ok_or_else(|| (reader.fail)(format!("commit.{key} is missing")))
    };
    Ok(Push {
        repo: Repo {
            full_url: None,
            namespace: text(commit, "namespace").unwrap_or_else(|| "rpms".into()),
            name: field("repo")?,
            fork_owner: None,
        },
        branch: field("branch")?,
        head: commit_sha(reader.fail, "commit.rev", &field("rev")?)?,
        old: None,
        pusher: text(commit, "agent").or_else(|| text(commit, "username")),
        forced: false,
        total_commits: Some(1),
        pull_request: None,
        summary: text(commit, "summary"),
    })
}

fn koji_task_state(value: Option<&Value>) -> Option<KojiTaskState> {
    match value? {
        Value::String(s) => KojiTaskState::from_name(s),
        Value::Number(n) => n.as_i64().and_then(KojiTaskState::from_number),
        _ => None,
    }
}

/// The task a `buildsys.task.state.change` body is about, read as [`parse`]
/// reads it (for looking up many at once before parsing).
pub fn koji_task_id(body: &Value) -> Option<i64> {
    let body = body.as_object()?;
    int(body, "id").or_else(|| {
        body.get("info")
            .and_then(Value::as_object)
            .and_then(|i| int(i, "id"))
    })
}

fn koji_task<F: Fn(String) -> ParseError>(reader: &Reader<'_, F>) -> Result<KojiTask, ParseError> {
    let info = reader.body.get("info").and_then(Value::as_object);
    let id = int(reader.body, "id")
        .or_else(|| info.and_then(|i| int(i, "id")))
        .ok_or_else(|| (reader.fail)("id is missing".into()))?;
    let new = koji_task_state(reader.body.get("new"))
        .or_else(|| info.and_then(|i| koji_task_state(i.get("state"))))
        .ok_or_else(|| (reader.fail)("new is missing or not a Koji task state".into()))?;
    let request = info
        .and_then(|i| i.get("request"))
        .and_then(Value::as_array);
    let arch_tasks = arch_tasks(
        info.and_then(|i| i.get("children"))
            .and_then(Value::as_array),
    );
    Ok(KojiTask {
        id: KojiTaskId(id),
        method: text(reader.body, "method").or_else(|| info.and_then(|i| text(i, "method"))),
        owner: text(reader.body, "owner"),
        old: koji_task_state(reader.body.get("old")),
        new,
        source: request
            .and_then(|r| r.first())
            .and_then(Value::as_str)
            .map(str::to_owned),
        target: request
            .and_then(|r| r.get(1))
            .and_then(Value::as_str)
            .map(str::to_owned),
        scratch: request
            .and_then(|r| r.get(2))
            .and_then(|o| o.get("scratch"))
            .and_then(Value::as_bool),
        started: info.and_then(|i| koji_seconds(i, "start_ts", "start_time")),
        completed: info.and_then(|i| koji_seconds(i, "completion_ts", "completion_time")),
        arch_tasks,
    })
}

fn koji_build<F: Fn(String) -> ParseError>(
    reader: &Reader<'_, F>,
) -> Result<KojiBuild, ParseError> {
    let state = |key: &str| int(reader.body, key).and_then(KojiBuildState::from_number);
    let request = reader.body.get("request").and_then(Value::as_array);
    Ok(KojiBuild {
        build_id: reader.int("build_id")?,
        task_id: int(reader.body, "task_id").map(KojiTaskId),
        name: reader.text("name")?,
        version: reader.text("version")?,
        release: reader.text("release")?,
        owner: text(reader.body, "owner"),
        old: state("old"),
        new: state("new")
            .ok_or_else(|| (reader.fail)("new is missing or not a Koji build state".into()))?,
        source: request
            .and_then(|r| r.first())
            .and_then(Value::as_str)
            .map(str::to_owned),
        target: request
            .and_then(|r| r.get(1))
            .and_then(Value::as_str)
            .map(str::to_owned),
        started: koji_seconds(reader.body, "start_ts", "start_time")
            .or_else(|| koji_seconds(reader.body, "creation_ts", "creation_time")),
        completed: koji_seconds(reader.body, "completion_ts", "completion_time"),
        arch_tasks: arch_tasks(
            reader
                .body
                .get("task")
                .and_then(|t| t.get("children"))
                .and_then(Value::as_array),
        ),
    })
}

/// The `buildArch` subtasks among a task's children, with their architectures.
fn arch_tasks(children: Option<&Vec<Value>>) -> Vec<(KojiTaskId, String)> {
    children
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(|c| c.get("method").and_then(Value::as_str) == Some("buildArch"))
        .filter_map(|c| {
            Some((
                KojiTaskId(int(c, "id")?),
                text(c, "arch").or_else(|| text(c, "label"))?,
            ))
        })
        .collect()
}

fn bodhi<F: Fn(String) -> ParseError>(reader: &Reader<'_, F>) -> Result<Event, ParseError> {
    let artifact = reader.object("artifact")?;
    let update = reader.body.get("update").and_then(Value::as_object);
    let submitter = update
        .and_then(|u| u.get("user"))
        .and_then(Value::as_object)
        .and_then(|u| text(u, "name"));
    let Some(list) = artifact.get("builds").and_then(Value::as_array) else {
        return Err((reader.fail)(
            "artifact.builds is missing or not a list".into(),
        ));
    };
    let mut builds = Vec::with_capacity(list.len());
    for (i, build) in list.iter().enumerate() {
        let Some(build) = build.as_object() else {
            return Err((reader.fail)(format!(
                "artifact.builds[{i}] is not an object"
            )));
        };
        let nvr = text(build, "nvr")
            .ok_or_else(|| (reader.fail)(format!("artifact.builds[{i}].nvr is missing")))?;
        let nvr = build_nvr(&nvr).to_owned();
        let component = text(build, "component").unwrap_or_else(|| nvr_name(&nvr).to_owned());
        builds.push(UpdateBuild {
            build_id: int(build, "id"),
            task_id: int(build, "task_id"),
            component,
            issuer: text(build, "issuer").or_else(|| submitter.clone()),
            nvr,
        });
    }
    let repository = text(artifact, "repository");
    let alias = update
        .and_then(|u| text(u, "alias"))
        .or_else(|| {
            repository
                .as_deref()
                .and_then(|r| r.trim_end_matches('/').rsplit('/').next())
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
        })
        .or_else(|| text(artifact, "id"))
        .ok_or_else(|| (reader.fail)("neither update.alias nor artifact.id is given".into()))?;
    let release = text(artifact, "release").or_else(|| {
        update
            .and_then(|u| u.get("release"))
            .and_then(Value::as_object)
            .and_then(|r| text(r, "name"))
    });
    Ok(Event::BodhiUpdateReady(BodhiUpdateReady {
        url: repository
            .filter(|r| r.contains("/updates/"))
            .or_else(|| Some(format!("https://bodhi.fedoraproject.org/updates/{alias}"))),
        update: alias,
        release,
        builds,
        retrigger: reader
            .body
            .get("re-trigger")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        agent: text(reader.body, "agent"),
    }))
}

/// The architectures Koji names RPMs with.
const RPM_ARCHES: &[&str] = &[
    "src", "noarch", "x86_64", "aarch64", "ppc64le", "s390x", "i686", "i386", "armv7hl", "ppc64",
];

/// A build's NVR as Koji names the build. Bodhi's first message shapes give
/// some builds with an RPM's architecture after it (`libselinux-2.8-6.fc29.x86_64`):
/// the build is `libselinux-2.8-6.fc29` all the same, and is tested once.
pub fn build_nvr(nvr: &str) -> &str {
    match nvr.rsplit_once('.') {
        // Only when a name, a version and a release are left before it.
        Some((build, arch)) if RPM_ARCHES.contains(&arch) && build.matches('-').count() >= 2 => {
            build
        }
        _ => nvr,
    }
}

/// The name part of a name-version-release.
pub fn nvr_name(nvr: &str) -> &str {
    let mut parts = nvr.rsplitn(3, '-');
    let (_release, _version) = (parts.next(), parts.next());
    parts.next().unwrap_or(nvr)
}

fn testing_farm<F: Fn(String) -> ParseError>(
    reader: &Reader<'_, F>,
) -> Result<TestingFarmRequest, ParseError> {
    let state = reader.text("state")?;
    let result = reader.body.get("result").and_then(Value::as_object);
    Ok(TestingFarmRequest {
        request_id: reader.text("id")?,
        state: TestingFarmState::parse(&state)
            .ok_or_else(|| (reader.fail)(format!("state {state:?} is not a Testing Farm state")))?,
        result: result
            .and_then(|r| text(r, "overall"))
            .map(|o| TestingFarmResult::parse(&o)),
        summary: result.and_then(|r| text(r, "summary")),
        xunit_url: result.and_then(|r| text(r, "xunit_url")),
        artifacts_url: reader
            .body
            .get("run")
            .and_then(Value::as_object)
            .and_then(|r| text(r, "artifacts")),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SHA: &str = "889f07af35d27bbcaf9c535c17a63b974aa42ee3";

    #[test]
    fn koji_task_times_are_read_in_every_shape_koji_sends() {
        let task = |info: Value| {
            let body =
                json!({"id": 1, "old": null, "new": "CLOSED", "method": "build", "info": info});
            let Ok(Event::KojiTask(task)) = parse(TOPIC_KOJI_TASK_POLLED, &body) else {
                panic!("a task");
            };
            (task.started, task.completed)
        };
        let (start, end) = (Some(1_718_895_864.525_136), Some(1_718_896_000.0));
        // A current hub's getTaskInfo, as our poll records it.
        assert_eq!(
            task(json!({
                "start_time": "2024-06-20 15:04:24.525136+00:00", "start_ts": 1_718_895_864.525_136,
                "completion_time": "2024-06-20 15:06:40+00:00", "completion_ts": 1_718_896_000.0,
            })),
            (start, end)
        );
        // Only the dates, with or without an offset (none is UTC).
        assert_eq!(
            task(json!({
                "start_time": "2024-06-20 15:04:24.525136+00:00",
                "completion_time": "2024-06-20 15:06:40",
            })),
            (start, end)
        );
        // The bus, and older hubs: seconds as `*_time`.
        assert_eq!(
            task(json!({"start_time": 1_718_895_864.525_136, "completion_time": 1_718_896_000})),
            (start, end)
        );
        assert_eq!(
            task(json!({"start_time": null, "completion_time": "soon"})),
            (None, None)
        );
    }

    #[test]
    fn only_full_lowercase_hashes_are_commit_hashes() {
        assert_eq!(CommitSha::parse(SHA).map(|s| s.0), Some(SHA.to_owned()));
        for bad in [
            "",
            "..",
            ".",
            "889f07a",
            "889F07AF35D27BBCAF9C535C17A63B974AA42EE3",
            "889f07af35d27bbcaf9c535c17a63b974aa42ee3 ",
            "889f07af35d27bbcaf9c535c17a63b974aa42ee30",
            "889f07af35d27bbcaf9c535c17a63b974aa42eeg",
            "../../../../../../../../../../../../../a",
            "main",
        ] {
            assert_eq!(CommitSha::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn project_urls_name_their_project_or_say_why_not() {
        const BASE: &str = "https://src.fedoraproject.org";
        let names = |url: &str| {
            project_names(BASE, url).map(|n| {
                (
                    n.fork_owner.map(str::to_owned),
                    n.namespace.to_owned(),
                    n.repo.to_owned(),
                )
            })
        };
        assert_eq!(
            names("https://src.fedoraproject.org/rpms/libstdc++.git/"),
            Ok((None, "rpms".to_owned(), "libstdc++".to_owned()))
        );
        for fork in ["fork", "forks"] {
            let url = format!("{BASE}/{fork}/zbyszek/rpms/optee_os");
            assert_eq!(
                names(&url),
                Ok((
                    Some("zbyszek".to_owned()),
                    "rpms".to_owned(),
                    "optee_os".to_owned()
                ))
            );
        }
        for other in [
            "https://pagure.io/fedora-ci/x",
            "https://src.fedoraproject.org/rpms",
            "https://src.fedoraproject.org/fork/rpms",
            "https://src.fedoraproject.org/rpms//bash",
            "https://src.fedoraproject.org/a/b/c",
        ] {
            assert_eq!(names(other), Err(ProjectUrlError::NotUnderBase), "{other}");
        }
        assert_eq!(
            names("https://src.fedoraproject.org/fork/../rpms/bash"),
            Err(ProjectUrlError::InvalidName {
                part: "fork owner",
                name: "..".to_owned()
            })
        );
        assert_eq!(
            names("https://src.fedoraproject.org/rpms/.."),
            Err(ProjectUrlError::InvalidName {
                part: "repository",
                name: "..".to_owned()
            })
        );
    }

    #[test]
    fn pagure_names() {
        for good in [
            "rpms",
            "tests",
            "libstdc++",
            "python3.12",
            "optee_os",
            "perl-Test-Simple",
            "_private",
            "0ad",
            "zbyszek",
            "a",
        ] {
            assert!(is_pagure_name(good), "{good:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "...",
            ".hidden",
            "-rf",
            "+x",
            "a/b",
            "a?b",
            "a#b",
            "%2e%2e",
            "a%20b",
            "a b",
            "a\tb",
            "a\nb",
            ".\t.",
            "a\u{0}b",
            "é",
            &"a".repeat(256),
        ] {
            assert!(!is_pagure_name(bad), "{bad:?}");
        }
    }

    fn pull_request_with_head(head: &str) -> Value {
        json!({
            "pullrequest": {
                "id": 7,
                "branch": "rawhide",
                "commit_stop": head,
                "project": {"name": "bash", "namespace": "rpms",
                            "full_url": "https://src.fedoraproject.org/rpms/bash"},
            }
        })
    }

    #[test]
    fn a_pull_request_whose_head_is_not_a_hash_is_refused() {
        let topic = "org.fedoraproject.prod.pagure.pull-request.new";
        let event = parse(topic, &pull_request_with_head(SHA)).expect("a valid head");
        let Event::PullRequest { pr, .. } = event else {
            panic!("not a pull request: {event:?}");
        };
        assert_eq!(pr.head.as_str(), SHA);

        let error = parse(topic, &pull_request_with_head("..")).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "pagure.pull-request.new: pullrequest.commit_stop \"..\" is not a commit hash (40 lowercase hexadecimal digits)"
        );
        let long = "x".repeat(1000);
        let error = parse(topic, &pull_request_with_head(&long)).expect_err("refused");
        assert!(error.to_string().len() < 200, "{error}");
        let comment = "org.fedoraproject.prod.pagure.pull-request.comment.added";
        assert!(parse(comment, &pull_request_with_head("HEAD")).is_err());
    }

    #[test]
    fn a_push_whose_commits_are_not_hashes_is_refused() {
        let push = |end: &str, old: &str| {
            json!({
                "repo": {"name": "bash", "namespace": "rpms"},
                "branch": "rawhide",
                "end_commit": end,
                "old_commit": old,
            })
        };
        let topic = "org.fedoraproject.prod.pagure.git.receive";
        assert!(parse(topic, &push(SHA, SHA)).is_ok());
        let error = parse(topic, &push("../rpms/x", SHA)).expect_err("bad end");
        assert!(error.to_string().contains("end_commit"), "{error}");
        let error = parse(topic, &push(SHA, "main")).expect_err("bad old");
        assert!(error.to_string().contains("old_commit"), "{error}");

        let legacy =
            |rev: &str| json!({"commit": {"repo": "bash", "branch": "rawhide", "rev": rev}});
        let topic = "org.fedoraproject.prod.git.receive";
        assert!(parse(topic, &legacy(SHA)).is_ok());
        let error = parse(topic, &legacy("abc")).expect_err("bad rev");
        assert!(error.to_string().contains("commit.rev"), "{error}");
    }
}
