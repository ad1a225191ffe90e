//! Builds the automation settings from the configuration: the upstream xyOps server, the
//! dedupe statuses, and the report templates with their overrides.
//!
//! Template overrides: `templates/job.md.j2` and `templates/alert.md.j2`, looked for first in
//! the directory of the `--config` file, then in the data directory; a file that is missing
//! keeps the built-in template. A template with a syntax error stops the server at start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use docket_core::report::{ReportTemplates, TemplateSource};
use docket_core::service::Automation;

use crate::config::Config;
use crate::upstream::Upstream;

/// The override file names, in the `templates` directory.
pub const JOB_TEMPLATE_FILE: &str = "job.md.j2";
pub const ALERT_TEMPLATE_FILE: &str = "alert.md.j2";

pub fn build(config: &Config, data_dir: &Path) -> anyhow::Result<Automation> {
    let dirs = template_dirs(config, data_dir);
    let templates = ReportTemplates::new(
        find_override(&dirs, JOB_TEMPLATE_FILE)?,
        find_override(&dirs, ALERT_TEMPLATE_FILE)?,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let source =
        Upstream::from_config(&config.upstream).context("setting up the upstream xyOps client")?;
    Ok(Automation {
        source: source.map(|u| Arc::new(u) as Arc<dyn docket_core::service::RecordSource>),
        templates,
        dedupe_closed_statuses: config.tickets.dedupe_closed_statuses.clone(),
        base_app_url: config.server.base_app_url.clone(),
    })
}

/// Where overrides are looked for, in order.
pub(crate) fn template_dirs(config: &Config, data_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = &config.config_dir {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir.as_path()
        };
        dirs.push(dir.join("templates"));
    }
    dirs.push(data_dir.join("templates"));
    dirs
}

pub(crate) fn find_override(
    dirs: &[PathBuf],
    name: &str,
) -> anyhow::Result<Option<TemplateSource>> {
    for dir in dirs {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                tracing::info!(template = %path.display(), "using a report template override");
                return Ok(Some(TemplateSource {
                    origin: path.display().to_string(),
                    text,
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("reading report template {}", path.display()))
            }
        }
    }
    Ok(None)
}
