//! F7: pushes to dist-git are recorded (who pushed which commit to which
//! branch) and linked to the pull requests they merged or updated. A push
//! starts nothing by itself: a pull request's new commits arrive as its own
//! `updated` message, which F1 handles, so the same change never runs twice.

use events::typed::Push;
use sqlx::PgConnection;
use store::flows;

use crate::common::{Context, Decisions};

const HANDLER: &str = "push";

pub(crate) async fn handle(
    conn: &mut PgConnection,
    ctx: &Context,
    d: &mut Decisions,
    push: &Push,
) -> Result<(), sqlx::Error> {
    let subject = Some(format!("{} {}", push.branch, push.head.short()));
    let project = match ctx.project(&ctx.repo_url(&push.repo)) {
        Ok(project) => project,
        Err(skip) => {
            d.skipped(HANDLER, subject, skip.to_string());
            return Ok(());
        }
    };
    let project_id = crate::pull_request::project_id(conn, &project).await?;
    // Pagure names the pull request a push merged; a push to a fork's branch
    // updates the pull requests opened from it.
    let mut linked = Vec::new();
    if let Some(number) = push.pull_request
        && let Some(pr) = flows::find_pull_request(&mut *conn, project_id, number).await?
    {
        linked.push((pr.id, number));
    }
    for pr in flows::pull_requests_from_branch(&mut *conn, &project.url, &push.branch).await? {
        if !linked.contains(&pr) {
            linked.push(pr);
        }
    }
    let pull_request_id = linked.first().map(|(id, _)| *id);
    let total_commits = push.total_commits.and_then(|n| i32::try_from(n).ok());
    let push_id = flows::insert_push(
        &mut *conn,
        d.event_id,
        project_id,
        &push.branch,
        push.old.as_ref().map(|s| s.as_str()),
        push.head.as_str(),
        push.pusher.as_deref(),
        push.forced,
        total_commits,
        pull_request_id,
    )
    .await?;
    flows::upsert_commit(
        &mut *conn,
        project_id,
        push.head.as_str(),
        push_id,
        pull_request_id,
    )
    .await?;
    let link = if linked.is_empty() {
        String::new()
    } else {
        format!(
            ", linked to {}",
            linked
                .iter()
                .map(|(_, n)| format!("PR #{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    d.skipped(
        HANDLER,
        subject,
        format!(
            "push by {} to {} recorded{link}; a push starts no CI: pull requests run from their own messages",
            push.pusher.as_deref().unwrap_or("someone"),
            project.url
        ),
    );
    Ok(())
}
