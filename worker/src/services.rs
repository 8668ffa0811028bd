//! The external services as the configuration names them: the real clients,
//! in dry-run for the services the configuration gives no credentials for.

use std::sync::Arc;

use anyhow::Context as _;
use clients::distgit::{DistGit, PagureClient};
use clients::eln::PackageListClient;
use clients::fas::{FasAuth, FasClient, Kerberos};
use clients::http::Timeouts;
use clients::koji::{self, KojiClient, KojiConfig};
use clients::testing_farm::{TestingFarm, TestingFarmClient};
use tracing::info;

use crate::config::{KojiAuth, Settings};
use crate::jobs::Services;

pub fn from_settings(settings: &Settings) -> anyhow::Result<Services> {
    let timeouts = Timeouts::default();
    let testing_farm = TestingFarmClient::new(
        &settings.testing_farm.api_url,
        settings.testing_farm.token.clone(),
        settings.testing_farm.webhook_token.clone(),
        timeouts,
    )
    .context("testing_farm.api_url")?;
    let distgit = PagureClient::new(
        &settings.distgit.url,
        settings
            .distgit
            .api_url
            .as_deref()
            .unwrap_or(&settings.distgit.url),
        settings.distgit.token.clone(),
        timeouts,
    )
    .context("distgit.api_url")?;
    let koji_auth = match settings.koji.auth {
        KojiAuth::None => koji::KojiAuth::None,
        KojiAuth::Kerberos => koji::KojiAuth::Kerberos {
            principal: settings.koji.principal.clone(),
            keytab: settings.koji.keytab.clone(),
        },
    };
    let koji = KojiClient::new(KojiConfig::new(&settings.koji.hub_url, koji_auth))
        .context("koji.hub_url")?;
    // FASJSON in Fedora's infrastructure wants the service's Kerberos
    // identity, the same one that builds on Koji.
    let fas_auth = match (
        &settings.koji.auth,
        &settings.koji.principal,
        &settings.koji.keytab,
    ) {
        (KojiAuth::Kerberos, Some(principal), Some(keytab)) => {
            FasAuth::Kerberos(Kerberos::new(principal.clone(), keytab.clone()))
        }
        _ => FasAuth::None,
    };
    let fas = FasClient::new(&settings.fas.url, fas_auth, timeouts).context("fas.url")?;
    let eln_lists = PackageListClient::new(timeouts).context("fedora_ci.eln_packages_urls")?;
    let (tf, dg, kj): (&dyn TestingFarm, &dyn DistGit, &dyn clients::koji::Koji) =
        (&testing_farm, &distgit, &koji);
    for (service, dry) in [
        ("Testing Farm (no testing_farm.token)", tf.dry_run()),
        ("dist-git (no distgit.token)", dg.dry_run()),
        ("Koji (no koji.principal and koji.keytab)", kj.dry_run()),
    ] {
        if dry {
            info!("dry-run for {service}: requests are recorded in the jobs' results, not sent");
        }
    }
    Ok(Services {
        koji: Arc::new(koji),
        testing_farm: Arc::new(testing_farm),
        distgit: Arc::new(distgit),
        fas: Arc::new(fas),
        eln_lists: Arc::new(eln_lists),
        composes: Arc::default(),
    })
}
