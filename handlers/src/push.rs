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
    let linked = flows::record_push(
        &mut *conn,
        &flows::NewPush {
            event_id: d.event_id,
            project_url: &project.url,
            forge: &project.forge,
            namespace: &project.namespace,
            repo: &project.repo,
            branch: &push.branch,
            old_sha: push.old.as_ref().map(|s| s.as_str()),
            new_sha: push.head.as_str(),
            pusher: push.pusher.as_deref(),
            forced: push.forced,
            total_commits: push.total_commits.and_then(|n| i32::try_from(n).ok()),
            merged_pr: push.pull_request,
        },
    )
    .await?;
    let link = if linked.is_empty() {
        String::new()
    } else {
        format!(
            ", linked to {}",
            linked
                .iter()
                .map(|n| format!("PR #{n}"))
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
