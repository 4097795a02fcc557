//! `wactor deploy`: upload a component and its manifest as a new version
//! of an actor, activated unless `--no-activate`.
//!
//! The manifest is read here only for the actor's name and the component's
//! path; the host validates everything (and refuses with exit code 4).
//! `--actor NAME --component FILE` without a manifest re-uses the actor's
//! current manifest from the host.

use std::path::{Path, PathBuf};

use clap::Args;
use wactor_api::wire::{ActorDetail, DeployedView};

use super::client::{parse, segment, Client};
use super::output::{format_size, print_json};
use super::{Conn, Failure, Result, EXIT_OK};

/// Arguments of `wactor deploy`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  wactor deploy examples/echo/actor.toml
      upload the component the manifest names, and activate it
  wactor deploy actor.toml --component target/wasm32-wasip2/release/my_actor.wasm --notes 'fix #42'
  wactor deploy actor.toml --no-activate
      store the version only; `wactor activate NAME N` runs it later
  wactor deploy --actor echo --component echo.wasm
      a new component for an existing actor, with its current manifest

An identical upload (same component and manifest) creates no new version.
Exit codes: 0 deployed, 1 host unreachable, 2 usage, 3 unknown actor (--actor),
4 refused (bad manifest or component, name mismatch, too large), 5 unauthorized.")]
pub struct DeployArgs {
    /// The actor's manifest (`actor.toml`).
    #[arg(value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,
    /// The component to upload; default: the manifest's `component`,
    /// relative to the manifest's directory.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub component: Option<PathBuf>,
    /// The actor to deploy to; without a manifest, its current manifest is
    /// re-used (needs --component).
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
    /// Store the new version without activating it.
    #[arg(long)]
    pub no_activate: bool,
    /// Free text kept with the version (a commit, a ticket).
    #[arg(long, value_name = "TEXT")]
    pub notes: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

/// What to upload.
struct Plan {
    actor: String,
    manifest: String,
    component: PathBuf,
}

/// Runs `wactor deploy`.
pub async fn run(args: DeployArgs) -> Result<u8> {
    let client = Client::new(&args.conn)?;
    let plan = match &args.manifest {
        Some(path) => plan_from_file(path, args.component.as_deref(), args.actor.as_deref())?,
        None => plan_from_host(&client, &args).await?,
    };
    let bytes = std::fs::read(&plan.component).map_err(|e| {
        Failure::Other(format!(
            "cannot read the component {}: {e}",
            plan.component.display()
        ))
    })?;
    let (_, value) = client
        .upload(
            &plan.actor,
            plan.manifest,
            bytes,
            args.notes.clone(),
            !args.no_activate,
        )
        .await
        .map_err(|failure| match (failure, &args.manifest) {
            // The host checks the manifest; say which file it refused.
            (
                Failure::Api {
                    status,
                    code,
                    message,
                },
                Some(path),
            ) if code == "bad_manifest" => Failure::Api {
                status,
                code,
                message: format!("{}: {message}", path.display()),
            },
            (failure, _) => failure,
        })?;
    if args.conn.json {
        print_json(&value);
        return Ok(EXIT_OK);
    }
    let deployed: DeployedView = parse(&value)?;
    let version = &deployed.version.record;
    let what = format!(
        "{} v{} (sha256 {}, {})",
        version.actor,
        version.version,
        version.sha256.get(..12).unwrap_or(&version.sha256),
        format_size(version.size)
    );
    match (deployed.created, deployed.activated) {
        (true, true) => println!(
            "deployed {what}; it is active (compiled in {:.0} ms, live after {:.0} ms)",
            deployed.compile_ms, deployed.total_ms
        ),
        (true, false) => println!(
            "uploaded {what}; not activated: `wactor activate {} {}` runs it",
            version.actor, version.version
        ),
        (false, true) => println!("{what} already has this component and manifest; it is active"),
        (false, false) => println!(
            "{what} already has this component and manifest; not active (`wactor activate {} {}`)",
            version.actor, version.version
        ),
    }
    Ok(EXIT_OK)
}

fn plan_from_file(path: &Path, component: Option<&Path>, actor: Option<&str>) -> Result<Plan> {
    let manifest = std::fs::read_to_string(path)
        .map_err(|e| Failure::Other(format!("cannot read the manifest {}: {e}", path.display())))?;
    let table: toml::Table = toml::from_str(&manifest)
        .map_err(|e| Failure::Invalid(format!("{} is not valid TOML: {e}", path.display())))?;
    let name = table
        .get("name")
        .and_then(toml::Value::as_str)
        .ok_or_else(|| Failure::Invalid(format!("{} has no `name`", path.display())))?;
    let component = match component {
        Some(component) => component.to_path_buf(),
        None => {
            let named = table
                .get("component")
                .and_then(toml::Value::as_str)
                .ok_or_else(|| {
                    Failure::Usage(format!(
                        "{} names no `component`: pass --component FILE",
                        path.display()
                    ))
                })?;
            path.parent().unwrap_or(Path::new(".")).join(named)
        }
    };
    Ok(Plan {
        actor: actor.unwrap_or(name).to_string(),
        manifest,
        component,
    })
}

async fn plan_from_host(client: &Client, args: &DeployArgs) -> Result<Plan> {
    let (Some(actor), Some(component)) = (&args.actor, &args.component) else {
        return Err(Failure::Usage(
            "give a manifest file, or --actor NAME with --component FILE".into(),
        ));
    };
    let value = client
        .get(&format!("/v1/actors/{}", segment(actor)))
        .await?;
    let detail: ActorDetail = parse(&value)?;
    Ok(Plan {
        actor: actor.clone(),
        manifest: detail.manifest,
        component: component.clone(),
    })
}
