//! The usage page of the Packit dashboard: `/api/usage/past-day`,
//! `past-week`, `past-month`, `past-year` and `total`, and
//! `/api/usage/intervals?days=&hours=&count=`, in the shape of Packit
//! Service's answers (`get_past_usage_data` and `get_usage_interval_data` in
//! `packit_service/service/tasks.py`, over `get_usage_data` in
//! `packit_service/models.py`), with Fedora CI's own numbers.
//!
//! What counts, against Packit's words:
//! - *events* are what Packit calls project events with at least one
//!   pipeline: for us `pull_request` (pull requests with a pipeline) and,
//!   beside Packit's kinds, `bodhi_update` (Bodhi updates with a gating
//!   round). Packit's other kinds (`branch_push`, `release`, `issue`,
//!   `koji_build_tag`, `anitya_version`, `anitya_multiple_versions`) are
//!   always 0: Fedora CI runs nothing for them.
//! - *jobs*: `koji_build_groups` counts our scratch builds and
//!   `tft_test_run_groups` our Testing Farm runs (pull requests' and gating),
//!   one each, which is what the dashboard labels them ("Koji Builds", "TFT
//!   Test Runs"); Packit counts groups of one trigger's targets. Its
//!   `srpm_builds`, `copr_build_groups`, `vm_image_build_targets`,
//!   `sync_release_runs` and `log_detective_run_groups` are always 0: Fedora CI
//!   has none (Log Detective comes with issue 17).
//! - a project is *active* in a period when it had a pipeline in it.
//!
//! Packit computes these in a Celery task and redirects the dashboard to the
//! task's result (`302` to `past-week/<task id>`); we answer at once, with
//! `200`. Packit keeps its numbers for a day; ours are read each time.
//! Objects are keyed in alphabetical order, as Flask sorts the keys of
//! Packit's answers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use serde::Serialize;
use store::usage::{ActivityRecord, kind};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState, ErrorBody, only_params};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(past_day))
        .routes(routes!(past_week))
        .routes(routes!(past_month))
        .routes(routes!(past_year))
        .routes(routes!(total))
        .routes(routes!(intervals))
}

/// Packit's kinds of project event (`ProjectEventModelType`), and ours.
const EVENTS: &[&str] = &[
    "anitya_multiple_versions",
    "anitya_version",
    "bodhi_update",
    "branch_push",
    "issue",
    "koji_build_tag",
    "pull_request",
    "release",
];

/// Packit's jobs (the tables of `get_usage_data`), with what of ours each counts.
const JOBS: &[(&str, Option<&str>)] = &[
    ("copr_build_groups", None),
    ("koji_build_groups", Some(kind::KOJI_BUILD)),
    ("log_detective_run_groups", None),
    ("srpm_builds", None),
    ("sync_release_runs", None),
    ("tft_test_run_groups", Some(kind::TEST_RUN)),
    ("vm_image_build_targets", None),
];

/// How many of the top projects a list names, as Packit's past usage does.
const TOP: usize = 5;

/// Whether a record is an event (a pipeline of a pull request or an update).
fn is_event(kind: &str) -> bool {
    kind == kind::PULL_REQUEST || kind == kind::BODHI_UPDATE
}

/// The `top` projects with the highest counts (ties by URL).
fn top(counts: &BTreeMap<String, i64>, top: usize) -> BTreeMap<String, i64> {
    let mut sorted: Vec<(&String, &i64)> = counts.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    sorted
        .into_iter()
        .take(top)
        .map(|(url, n)| (url.clone(), *n))
        .collect()
}

// --------------------------------------------------------------- past usage

/// Every project we know.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllProjects {
    project_count: i64,
    /// Per forge (host), how many.
    instances: BTreeMap<String, i64>,
}

/// The projects that had a pipeline in the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveProjects {
    project_count: i64,
    /// The five projects with the most events (pull requests and Bodhi
    /// updates with a pipeline). Packit lists every active project here;
    /// the dashboard does not read the list.
    top_projects_by_events_handled: BTreeMap<String, i64>,
    /// Per forge (host), how many.
    instances: BTreeMap<String, i64>,
}

/// One kind of event in the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventUsage {
    events_handled: i64,
    /// The five projects with the most.
    top_projects: BTreeMap<String, i64>,
}

/// One kind of job in the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobUsage {
    job_runs: i64,
    /// The five projects with the most.
    top_projects_by_job_runs: BTreeMap<String, i64>,
    /// How many projects had one.
    active_projects: i64,
}

/// Usage in a period (Packit's `get_past_usage_data`, with `all_projects`
/// and `events` of its `get_usage_data` beside, which the dashboard's
/// `UsageListData` type declares).
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageSummary {
    all_projects: AllProjects,
    active_projects: ActiveProjects,
    /// Per kind of event (Packit's, and our `bodhi_update`).
    events: BTreeMap<String, EventUsage>,
    /// Per kind of job (Packit's).
    jobs: BTreeMap<String, JobUsage>,
    /// Projects Fedora CI ever ran for (a pipeline of a pull request or
    /// a Bodhi update), whatever the period: Packit's count of projects
    /// onboarded to its downstream jobs.
    onboarded_projects_q1_2024: i64,
}

/// The usage from `from` (everything when none) until now.
async fn summary(state: &AppState, from: Option<TimeDelta>) -> Result<UsageSummary, ApiError> {
    let end = Utc::now();
    let start = match from {
        Some(ago) => end - ago,
        None => DateTime::UNIX_EPOCH,
    };
    let width = (end - start).num_seconds().max(1) + 1;
    let activity = store::usage::activity(&state.pool, start, end, width).await?;
    let forges = store::usage::projects_per_forge(&state.pool).await?;
    let onboarded = store::usage::projects_with_pipelines(&state.pool).await?;
    Ok(summarize(&activity, &forges, onboarded))
}

fn summarize(
    activity: &[ActivityRecord],
    forges: &[(String, i64)],
    onboarded: i64,
) -> UsageSummary {
    let mut per_kind: HashMap<&str, BTreeMap<String, i64>> = HashMap::new();
    let mut events_per_project: BTreeMap<String, i64> = BTreeMap::new();
    let mut active_forges: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for a in activity {
        *per_kind
            .entry(a.kind.as_str())
            .or_default()
            .entry(a.project_url.clone())
            .or_default() += a.count;
        if is_event(&a.kind) {
            *events_per_project.entry(a.project_url.clone()).or_default() += a.count;
            active_forges
                .entry(a.forge.clone())
                .or_default()
                .insert(&a.project_url);
        }
    }
    let empty = BTreeMap::new();
    let of = |kind: &str| per_kind.get(kind).unwrap_or(&empty);
    UsageSummary {
        all_projects: AllProjects {
            project_count: forges.iter().map(|(_, n)| n).sum(),
            instances: forges.iter().cloned().collect(),
        },
        active_projects: ActiveProjects {
            project_count: events_per_project.len() as i64,
            top_projects_by_events_handled: top(&events_per_project, TOP),
            instances: active_forges
                .into_iter()
                .map(|(forge, projects)| (forge, projects.len() as i64))
                .collect(),
        },
        events: EVENTS
            .iter()
            .map(|event| {
                let counts = of(event);
                let usage = EventUsage {
                    events_handled: counts.values().sum(),
                    top_projects: top(counts, TOP),
                };
                ((*event).to_owned(), usage)
            })
            .collect(),
        jobs: JOBS
            .iter()
            .map(|(job, ours)| {
                let counts = ours.map_or(&empty, of);
                let usage = JobUsage {
                    job_runs: counts.values().sum(),
                    top_projects_by_job_runs: top(counts, TOP),
                    active_projects: counts.len() as i64,
                };
                ((*job).to_owned(), usage)
            })
            .collect(),
        onboarded_projects_q1_2024: onboarded,
    }
}

/// No parameters are taken.
fn no_params(params: &HashMap<String, String>) -> Result<(), ApiError> {
    only_params(params, &[])
}

/// Usage in the past 24 hours.
#[utoipa::path(get, path = "/api/usage/past-day", tag = "dashboard",
    responses(
        (status = 200, description = "Usage in the past 24 hours", body = UsageSummary),
        (status = 400, description = "A parameter was given; none is taken", body = ErrorBody)))]
async fn past_day(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<UsageSummary>, ApiError> {
    no_params(&params)?;
    Ok(Json(summary(&state, Some(Duration::days(1))).await?))
}

/// Usage in the past 7 days.
#[utoipa::path(get, path = "/api/usage/past-week", tag = "dashboard",
    responses(
        (status = 200, description = "Usage in the past 7 days", body = UsageSummary),
        (status = 400, description = "A parameter was given; none is taken", body = ErrorBody)))]
async fn past_week(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<UsageSummary>, ApiError> {
    no_params(&params)?;
    Ok(Json(summary(&state, Some(Duration::days(7))).await?))
}

/// Usage in the past 30 days.
#[utoipa::path(get, path = "/api/usage/past-month", tag = "dashboard",
    responses(
        (status = 200, description = "Usage in the past 30 days", body = UsageSummary),
        (status = 400, description = "A parameter was given; none is taken", body = ErrorBody)))]
async fn past_month(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<UsageSummary>, ApiError> {
    no_params(&params)?;
    Ok(Json(summary(&state, Some(Duration::days(30))).await?))
}

/// Usage in the past 365 days.
#[utoipa::path(get, path = "/api/usage/past-year", tag = "dashboard",
    responses(
        (status = 200, description = "Usage in the past 365 days", body = UsageSummary),
        (status = 400, description = "A parameter was given; none is taken", body = ErrorBody)))]
async fn past_year(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<UsageSummary>, ApiError> {
    no_params(&params)?;
    Ok(Json(summary(&state, Some(Duration::days(365))).await?))
}

/// Usage since the service's first record.
#[utoipa::path(get, path = "/api/usage/total", tag = "dashboard",
    responses(
        (status = 200, description = "Usage of all time", body = UsageSummary),
        (status = 400, description = "A parameter was given; none is taken", body = ErrorBody)))]
async fn total(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<UsageSummary>, ApiError> {
    no_params(&params)?;
    Ok(Json(summary(&state, None).await?))
}

// ---------------------------------------------------------------- intervals

/// A point of a chart: the interval's end as the legend, and a number.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Point {
    /// The interval's end: `HH:MM` for intervals of hours, else `YYYY-MM-DD`.
    x: String,
    y: i64,
}

/// Usage interval by interval, oldest first (Packit's
/// `get_usage_interval_data`): each list has one point per interval.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageIntervals {
    /// Per job (Packit's), how many ran in the interval.
    jobs: BTreeMap<String, Vec<Point>>,
    /// Per job, how many projects had one in the interval.
    jobs_project_count: BTreeMap<String, Vec<Point>>,
    /// Per job, how many projects had one by the interval's end, ever.
    jobs_project_cumulative_count: BTreeMap<String, Vec<Point>>,
    /// Per kind of event (Packit's, and our `bodhi_update`), how many.
    events: BTreeMap<String, Vec<Point>>,
    /// The start of the first interval, RFC 3339. (Packit's `from` and `to`
    /// are the newest and the oldest interval's ends.)
    from: String,
    /// The end of the last interval, RFC 3339.
    to: String,
    /// How many projects had a pipeline in the interval.
    active_projects: Vec<Point>,
    /// How many projects had a pipeline by the interval's end, ever.
    active_projects_cumulative: Vec<Point>,
    /// The projects whose first pipeline ever is in these intervals.
    onboarded_projects: Vec<String>,
    /// Per job, the projects whose first one ever is in these intervals.
    onboarded_projects_per_job: BTreeMap<String, Vec<String>>,
}

/// The most intervals one answer has: a year of days, or of weeks (52).
const MAX_INTERVALS: i64 = 366;
/// The longest interval: a year.
const MAX_INTERVAL_HOURS: i64 = 366 * 24;

/// The intervals asked for: `count` of `days` days and `hours` hours each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Intervals {
    width: TimeDelta,
    count: i64,
    /// Legends say the hour (not the day) of intervals of hours only.
    hourly: bool,
}

impl Intervals {
    /// Packit's parameters and defaults: `days` 0, `hours` 0, `count` 10.
    fn parse(params: &HashMap<String, String>) -> Result<Intervals, ApiError> {
        only_params(params, &["days", "hours", "count"])?;
        let number = |key: &str, default: i64, max: i64| -> Result<i64, ApiError> {
            match params.get(key) {
                None => Ok(default),
                Some(text) => match text.parse::<i64>() {
                    Ok(n) if (0..=max).contains(&n) => Ok(n),
                    _ => Err(ApiError::bad_request(format!(
                        "{key} must be a whole number from 0 to {max}, not {text:?}"
                    ))),
                },
            }
        };
        let days = number("days", 0, MAX_INTERVAL_HOURS / 24)?;
        let hours = number("hours", 0, MAX_INTERVAL_HOURS)?;
        let count = number("count", 10, MAX_INTERVALS)?;
        let width_hours = days * 24 + hours;
        if width_hours == 0 || width_hours > MAX_INTERVAL_HOURS {
            return Err(ApiError::bad_request(format!(
                "days and hours make intervals of {width_hours} hours; they must be from 1 hour \
                 to {MAX_INTERVAL_HOURS} hours (a year)"
            )));
        }
        if count == 0 {
            return Err(ApiError::bad_request(
                "count must be a whole number from 1 to 366, not \"0\"",
            ));
        }
        Ok(Intervals {
            width: TimeDelta::hours(width_hours),
            count,
            hourly: hours > 0 && days == 0,
        })
    }

    /// Where the intervals start and end: the last ends at the next full
    /// hour, so that it holds the present.
    fn span(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let hour = TimeDelta::hours(1);
        let end = now.duration_trunc(hour).unwrap_or(now) + hour;
        (end - self.width * (self.count as i32), end)
    }

    /// The legend of interval `i` (from 0, the oldest): its end.
    fn legend(&self, start: DateTime<Utc>, i: i64) -> String {
        let end = start + self.width * ((i + 1) as i32);
        end.format(if self.hourly { "%H:%M" } else { "%Y-%m-%d" })
            .to_string()
    }
}

/// Usage interval by interval: `count` intervals of `days` days and `hours`
/// hours, the last ending at the next full hour.
#[utoipa::path(get, path = "/api/usage/intervals", tag = "dashboard",
    params(
        ("days" = Option<i64>, Query, description = "Days of each interval, default 0"),
        ("hours" = Option<i64>, Query, description = "Hours of each interval, default 0; days and hours make 1 hour to a year"),
        ("count" = Option<i64>, Query, description = "How many intervals, 1 to 366, default 10"),
    ),
    responses(
        (status = 200, description = "Usage per interval", body = UsageIntervals),
        (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn intervals(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<UsageIntervals>, ApiError> {
    let intervals = Intervals::parse(&params)?;
    let (start, end) = intervals.span(Utc::now());
    let width = intervals.width.num_seconds();
    let activity = store::usage::activity(&state.pool, start, end, width).await?;
    let firsts = store::usage::first_activity(&state.pool, start, end, width).await?;
    Ok(Json(chart(&intervals, start, end, &activity, &firsts)))
}

fn chart(
    intervals: &Intervals,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    activity: &[ActivityRecord],
    firsts: &[store::usage::FirstActivityRecord],
) -> UsageIntervals {
    let n = intervals.count as usize;
    let legends: Vec<String> = (0..intervals.count)
        .map(|i| intervals.legend(start, i))
        .collect();
    let points = |ys: &[i64]| -> Vec<Point> {
        legends
            .iter()
            .zip(ys)
            .map(|(x, y)| Point {
                x: x.clone(),
                y: *y,
            })
            .collect()
    };
    let slot = |interval: i64| usize::try_from(interval).ok().filter(|i| *i < n);

    // Per kind and interval: the total, and the projects.
    let mut totals: HashMap<&str, Vec<i64>> = HashMap::new();
    let mut projects: HashMap<&str, Vec<BTreeSet<&str>>> = HashMap::new();
    for a in activity {
        let Some(i) = slot(a.interval) else { continue };
        let kinds: &[&str] = if is_event(&a.kind) {
            &[a.kind.as_str(), kind::PIPELINE]
        } else {
            &[a.kind.as_str()]
        };
        for &k in kinds {
            totals.entry(k).or_insert_with(|| vec![0; n])[i] += a.count;
            projects
                .entry(k)
                .or_insert_with(|| vec![BTreeSet::new(); n])[i]
                .insert(&a.project_url);
        }
    }
    // Per kind: how many projects had a first one before, and which had it when.
    let mut before: HashMap<&str, i64> = HashMap::new();
    let mut newcomers: HashMap<&str, Vec<(usize, &str)>> = HashMap::new();
    for f in firsts {
        match (&f.project_url, f.interval.and_then(slot)) {
            (Some(url), Some(i)) => newcomers.entry(f.kind.as_str()).or_default().push((i, url)),
            (None, _) => *before.entry(f.kind.as_str()).or_default() += f.count,
            (Some(_), None) => {}
        }
    }
    let zeros = vec![0; n];
    let total = |k: &str| totals.get(k).unwrap_or(&zeros).clone();
    let project_count = |k: &str| -> Vec<i64> {
        projects.get(k).map_or_else(
            || zeros.clone(),
            |sets| sets.iter().map(|s| s.len() as i64).collect(),
        )
    };
    let cumulative = |k: &str| -> Vec<i64> {
        let mut per_interval = vec![0; n];
        for (i, _) in newcomers.get(k).into_iter().flatten() {
            per_interval[*i] += 1;
        }
        per_interval
            .iter()
            .scan(before.get(k).copied().unwrap_or(0), |sum, new| {
                *sum += new;
                Some(*sum)
            })
            .collect()
    };
    let onboarded = |k: &str| -> Vec<String> {
        let urls: BTreeSet<&str> = newcomers
            .get(k)
            .into_iter()
            .flatten()
            .map(|(_, url)| *url)
            .collect();
        urls.into_iter().map(str::to_owned).collect()
    };
    let per_job = |f: &dyn Fn(&str) -> Vec<i64>| -> BTreeMap<String, Vec<Point>> {
        JOBS.iter()
            .map(|(job, ours)| {
                let ys = ours.map_or_else(|| zeros.clone(), f);
                ((*job).to_owned(), points(&ys))
            })
            .collect()
    };
    UsageIntervals {
        jobs: per_job(&total),
        jobs_project_count: per_job(&project_count),
        jobs_project_cumulative_count: per_job(&cumulative),
        events: EVENTS
            .iter()
            .map(|event| ((*event).to_owned(), points(&total(event))))
            .collect(),
        from: start.to_rfc3339(),
        to: end.to_rfc3339(),
        active_projects: points(&project_count(kind::PIPELINE)),
        active_projects_cumulative: points(&cumulative(kind::PIPELINE)),
        onboarded_projects: onboarded(kind::PIPELINE),
        onboarded_projects_per_job: JOBS
            .iter()
            .map(|(job, ours)| ((*job).to_owned(), ours.map_or_else(Vec::new, onboarded)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::usage::FirstActivityRecord;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn activity(interval: i64, url: &str, kind: &str, count: i64) -> ActivityRecord {
        ActivityRecord {
            interval,
            project_url: url.to_owned(),
            forge: "src.fedoraproject.org".to_owned(),
            kind: kind.to_owned(),
            count,
        }
    }

    const A: &str = "https://src.fedoraproject.org/rpms/a";
    const B: &str = "https://src.fedoraproject.org/rpms/b";

    #[test]
    fn the_dashboards_intervals_are_taken_and_bad_ones_named() {
        for (days, hours, count, width, hourly) in [
            ("0", "1", "24", 1, true),
            ("1", "0", "7", 24, false),
            ("1", "0", "30", 24, false),
            ("7", "0", "52", 7 * 24, false),
        ] {
            let parsed = Intervals::parse(&params(&[
                ("days", days),
                ("hours", hours),
                ("count", count),
            ]))
            .expect("the dashboard's parameters");
            assert_eq!(parsed.width, TimeDelta::hours(width));
            assert_eq!(parsed.count.to_string(), count);
            assert_eq!(parsed.hourly, hourly);
        }
        for (pairs, named) in [
            (vec![], "days and hours"),
            (vec![("days", "0"), ("hours", "0")], "days and hours"),
            (vec![("days", "x")], "days"),
            (vec![("hours", "-1")], "hours"),
            (vec![("days", "1"), ("count", "0")], "count"),
            (vec![("days", "1"), ("count", "367")], "count"),
            (vec![("days", "300"), ("hours", "8000")], "days and hours"),
            (vec![("days", "1"), ("weeks", "1")], "weeks"),
        ] {
            let error = Intervals::parse(&params(&pairs)).expect_err("refused");
            assert_eq!(error.0, axum::http::StatusCode::BAD_REQUEST);
            assert!(error.1.contains(named), "{pairs:?}: {}", error.1);
        }
    }

    #[test]
    fn intervals_end_at_the_next_full_hour_and_are_named_by_their_end() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T22:43:00Z")
            .expect("a time")
            .with_timezone(&Utc);
        let hourly = Intervals::parse(&params(&[("hours", "1"), ("count", "24")])).expect("ok");
        let (start, end) = hourly.span(now);
        assert_eq!(end.to_rfc3339(), "2026-12-07T23:00:00+00:00");
        assert_eq!(start.to_rfc3339(), "2026-12-06T23:00:00+00:00");
        assert_eq!(hourly.legend(start, 0), "00:00");
        assert_eq!(hourly.legend(start, 23), "23:00");
        let weekly = Intervals::parse(&params(&[("days", "7"), ("count", "52")])).expect("ok");
        let (start, _) = weekly.span(now);
        assert_eq!(weekly.legend(start, 51), "2026-12-07");
        assert_eq!(weekly.legend(start, 50), "2026-11-30");
    }

    #[test]
    fn a_summary_counts_events_jobs_and_active_projects() {
        let summary = summarize(
            &[
                activity(0, A, kind::PULL_REQUEST, 2),
                activity(0, A, kind::KOJI_BUILD, 3),
                activity(0, A, kind::TEST_RUN, 12),
                activity(0, B, kind::BODHI_UPDATE, 1),
                activity(0, B, kind::TEST_RUN, 3),
            ],
            &[("src.fedoraproject.org".to_owned(), 7)],
            4,
        );
        let json = serde_json::to_value(&summary).expect("json");
        assert_eq!(json["all_projects"]["project_count"], 7);
        assert_eq!(json["active_projects"]["project_count"], 2);
        assert_eq!(
            json["active_projects"]["instances"]["src.fedoraproject.org"],
            2
        );
        assert_eq!(
            json["active_projects"]["top_projects_by_events_handled"][A],
            2
        );
        assert_eq!(json["events"]["pull_request"]["events_handled"], 2);
        assert_eq!(json["events"]["bodhi_update"]["events_handled"], 1);
        assert_eq!(json["events"]["branch_push"]["events_handled"], 0);
        assert_eq!(json["jobs"]["koji_build_groups"]["job_runs"], 3);
        assert_eq!(json["jobs"]["koji_build_groups"]["active_projects"], 1);
        assert_eq!(json["jobs"]["tft_test_run_groups"]["job_runs"], 15);
        assert_eq!(json["jobs"]["tft_test_run_groups"]["active_projects"], 2);
        assert_eq!(
            json["jobs"]["tft_test_run_groups"]["top_projects_by_job_runs"][B],
            3
        );
        assert_eq!(json["jobs"]["copr_build_groups"]["job_runs"], 0);
        assert_eq!(json["onboarded_projects_q1_2024"], 4);
        assert_eq!(json["events"].as_object().map(|o| o.len()), Some(8));
        assert_eq!(json["jobs"].as_object().map(|o| o.len()), Some(7));
    }

    #[test]
    fn the_chart_counts_each_interval_and_the_projects_so_far() {
        let intervals = Intervals::parse(&params(&[("days", "1"), ("count", "3")])).expect("ok");
        let now = Utc::now();
        let (start, end) = intervals.span(now);
        let first =
            |kind: &str, url: Option<&str>, interval: Option<i64>, count| FirstActivityRecord {
                kind: kind.to_owned(),
                project_url: url.map(str::to_owned),
                interval,
                count,
            };
        let chart = chart(
            &intervals,
            start,
            end,
            &[
                activity(0, A, kind::PULL_REQUEST, 1),
                activity(2, A, kind::PULL_REQUEST, 2),
                activity(2, B, kind::BODHI_UPDATE, 1),
                activity(2, B, kind::TEST_RUN, 3),
            ],
            &[
                // A had pipelines before; B's first one is in the last interval.
                first(kind::PIPELINE, None, None, 5),
                first(kind::PIPELINE, Some(B), Some(2), 1),
                first(kind::TEST_RUN, None, None, 4),
                first(kind::TEST_RUN, Some(B), Some(2), 1),
            ],
        );
        let json = serde_json::to_value(&chart).expect("json");
        let ys = |v: &serde_json::Value| -> Vec<i64> {
            v.as_array()
                .expect("points")
                .iter()
                .map(|p| p["y"].as_i64().expect("y"))
                .collect()
        };
        assert_eq!(ys(&json["active_projects"]), [1, 0, 2]);
        assert_eq!(ys(&json["active_projects_cumulative"]), [5, 5, 6]);
        assert_eq!(ys(&json["events"]["pull_request"]), [1, 0, 2]);
        assert_eq!(ys(&json["events"]["bodhi_update"]), [0, 0, 1]);
        assert_eq!(ys(&json["events"]["release"]), [0, 0, 0]);
        assert_eq!(ys(&json["jobs"]["tft_test_run_groups"]), [0, 0, 3]);
        assert_eq!(
            ys(&json["jobs_project_count"]["tft_test_run_groups"]),
            [0, 0, 1]
        );
        assert_eq!(
            ys(&json["jobs_project_cumulative_count"]["tft_test_run_groups"]),
            [4, 4, 5]
        );
        assert_eq!(
            ys(&json["jobs_project_cumulative_count"]["koji_build_groups"]),
            [0, 0, 0]
        );
        assert_eq!(json["onboarded_projects"], serde_json::json!([B]));
        assert_eq!(
            json["onboarded_projects_per_job"]["tft_test_run_groups"],
            serde_json::json!([B])
        );
        assert_eq!(
            json["onboarded_projects_per_job"]["srpm_builds"],
            serde_json::json!([])
        );
        assert_eq!(json["from"], start.to_rfc3339());
        assert_eq!(json["to"], end.to_rfc3339());
        assert_eq!(json["active_projects"][2]["x"], intervals.legend(start, 2));
    }
}
