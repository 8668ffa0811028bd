//! The ELN package list the `fetch-eln-packages` job keeps in the `facts`
//! table, as the ELN rule ([`checkers::rules::eln_build_needed`]) takes it.

use checkers::naming::Release;
use checkers::project::ProjectRef;
use checkers::rules::{self, Check, ElnList};
use sqlx::PgConnection;

use crate::common::{self, Context};

/// What the last fetched list says of `project`'s package, read in the
/// handler's transaction; `None` when no list was ever fetched. Not read
/// where the rule decides without it: fetching is off, the pull request is
/// not for rawhide, or the package is in `fedora_ci.eln_packages`.
pub(crate) async fn fetched_list(
    conn: &mut PgConnection,
    ctx: &Context,
    project: &ProjectRef,
    target_branch: &str,
) -> Result<Option<ElnList>, sqlx::Error> {
    let policy = &ctx.policy;
    if policy.eln_packages_urls.is_empty()
        || Release::from_branch(target_branch) != Some(Release::Rawhide)
        || policy.eln_packages.contains(&project.repo)
    {
        return Ok(None);
    }
    let listing = store::eln::listing(&mut *conn, &project.repo).await?;
    Ok(listing.map(|listing| ElnList {
        listed: listing.listed,
        sources: listing.sources,
        fetched_at: listing.fetched_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }))
}

/// Whether a pull request gets an ELN build ([`rules::eln_build_needed`]), with the fetched
/// list and, for ELN packages, whether the project has its own `eln` branch as far as it is
/// known. `Check::Unknown` when the branch still has to be looked up.
pub(crate) async fn build_needed(
    conn: &mut PgConnection,
    ctx: &Context,
    project: &ProjectRef,
    target_branch: &str,
) -> Result<Check, sqlx::Error> {
    let list = fetched_list(conn, ctx, project, target_branch).await?;
    let rule = |has_eln_branch| {
        rules::eln_build_needed(
            &ctx.policy,
            project,
            target_branch,
            list.as_ref(),
            has_eln_branch,
        )
    };
    // The branch look-up matters only for ELN packages: ask the rule first.
    Ok(match rule(None) {
        Check::Unknown(fact) => rule(common::known_flag_fact(conn, ctx, &fact).await?),
        decided => decided,
    })
}
