//! `medarena run`: runs a submission locally exactly as the platform's dummy-data run does
//! (the same pre-check, split, sandbox child and scorer: `medarena_arena::pipeline`), on
//! dummy data generated from the manifest, or on local data files. Prints the status, the
//! metric, the time per phase and the guest's debug output, then (`--blocks`, or a `row`-level
//! competition) the platform's partitioned score; exits 1 when the submission fails, 2 when
//! the input is unusable.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use medarena_arena::bundle::{Bundle, PrivacyLevel, SandboxLimits, TaskKind};
use medarena_arena::datasets_spec::Part;
use medarena_arena::datasets_spec::manifest::Role;
use medarena_arena::datasets_spec::{
    Field, LoadOptions, Manifest, RecordBatch, SplitConfig, dummy, load_with_manifest, union_sites,
};
use medarena_arena::pipeline::{
    DeclaredBounds, Evaluation, EvaluationError, TaskSpec, evaluate, evaluate_sealed,
    sandbox_limits,
};
use medarena_arena::sandbox::{ChildCommand, Sandbox, SandboxConfig, Timings, precheck};
use medarena_arena::scorer::{ClampBounds, Metric, block_mean, block_score, release_range};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The submission: a WebAssembly module following sandbox/ABI.md.
    #[arg(long)]
    submission: PathBuf,
    /// The dataset manifest (.yaml or .json).
    #[arg(long, required_unless_present = "from_server")]
    dataset: Option<PathBuf>,
    /// Local data files (CSV, Parquet, Arrow IPC) following the manifest, one per site.
    /// Without them, dummy data is generated from the manifest.
    data: Vec<PathBuf>,
    /// The competition bundle to take the task, target, metric, split and sandbox limits
    /// from (as the platform does).
    #[arg(long)]
    competition: Option<PathBuf>,
    /// Run as the platform's dummy run of a competition (id or slug) does, on the server
    /// you are signed in to (`medarena login`): its bundle, its manifest and its
    /// development data (the hospitals' published synthetic releases, else dummy data;
    /// `--rows` and `--seed` as the platform's defaults unless given).
    #[arg(long, value_name = "COMPETITION", conflicts_with_all = ["dataset", "data", "competition"])]
    from_server: Option<String>,
    /// The metric (default: the competition's, else roc_auc, multiclass_accuracy or rmse).
    #[arg(long)]
    metric: Option<String>,
    /// The column to predict (default: the competition's, else the manifest's label).
    #[arg(long)]
    target: Option<String>,
    /// Seed of the dummy data, the split and the module (default: the competition's split
    /// seed, else 0). The platform's dummy run uses the competition's split seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Rows of dummy (or, with `--from-server`, development) data.
    #[arg(long, default_value_t = 1000)]
    rows: usize,
    /// After the one-fit run, also score as the platform does at the `row` privacy level:
    /// the rows cut into this many blocks, each fitted and predicted in a fresh sandbox, and
    /// the mean of the blocks' scores (what is released with noise). Default: the
    /// competition's blocks at the `row` level, else none. Most useful on local data files.
    #[arg(long)]
    blocks: Option<u32>,
    /// Further metrics to print beside the main one, comma-separated (default: the
    /// competition's `organizer_metrics`).
    #[arg(long, value_delimiter = ',')]
    also: Vec<String>,
    /// Horizons of time-dependent survival metrics, comma-separated, in the time column's
    /// unit (default: the competition's `survival.horizons`).
    #[arg(long, value_delimiter = ',')]
    horizons: Vec<f64>,
    /// Uno's C counts only events before this time (default: the competition's
    /// `survival.tau`, else every event).
    #[arg(long)]
    tau: Option<f64>,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let module = std::fs::read(&args.submission)
        .with_context(|| format!("reading {}", args.submission.display()))?;
    let (manifest, bundle, development) = match &args.from_server {
        Some(competition) => {
            let (manifest, bundle, table) = from_server(&args, competition)?;
            (manifest, Some(bundle), Some(table))
        }
        None => {
            let path = args
                .dataset
                .as_ref()
                .context("--dataset is needed without --from-server")?;
            let bundle = args
                .competition
                .as_ref()
                .map(|path| -> anyhow::Result<Bundle> {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    Bundle::from_yaml(&text).with_context(|| format!("{}", path.display()))
                })
                .transpose()?;
            (Manifest::from_path(path)?, bundle, None)
        }
    };
    let spec = task_spec(&args, &manifest, bundle.as_ref())?;

    let info = match precheck(&module, &spec.limits) {
        Ok(info) => info,
        Err(refusal) => {
            println!("status   refused at pre-check: {refusal}");
            return Ok(ExitCode::from(1));
        }
    };
    println!(
        "module   {} ({} bytes, sha256 {}): pre-check ok",
        args.submission.display(),
        info.size,
        info.sha256
    );
    let table = match development {
        Some(table) => table,
        None => table(&args, &manifest, spec.split.seed)?,
    };
    let child = ChildCommand::current_exe("sandbox-child")
        .context("locating this executable for the sandbox child")?;
    let sandbox = Sandbox::new(SandboxConfig::new(child));
    match evaluate(&sandbox, &module, &manifest, &table, &spec, true) {
        Ok(evaluation) => {
            report(&spec, &evaluation)?;
            let blocks = args.blocks.or_else(|| {
                bundle
                    .as_ref()
                    .filter(|b| b.privacy.level == PrivacyLevel::Row)
                    .map(Bundle::blocks_per_run)
            });
            if let Some(blocks) = blocks.filter(|k| *k >= 2) {
                partitioned(
                    &sandbox,
                    &module,
                    &manifest,
                    &table,
                    &spec,
                    blocks,
                    bundle.as_ref(),
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(EvaluationError::Submission(failure)) => {
            println!("status   {failure}");
            print_debug(&failure.debug_log);
            Ok(ExitCode::from(1))
        }
        Err(EvaluationError::Data(message)) => bail!("{message}"),
    }
}

fn task_spec(
    args: &RunArgs,
    manifest: &Manifest,
    bundle: Option<&Bundle>,
) -> anyhow::Result<TaskSpec> {
    let target = match (&args.target, bundle) {
        (Some(target), _) => target.clone(),
        (None, Some(bundle)) => bundle.target.clone(),
        (None, None) => manifest
            .labels()
            .first()
            .or(manifest.fields_with_role(Role::TimeToEvent).next().as_ref())
            .map(|f| f.name.clone())
            .context(
                "the manifest declares no label or survival time; name the column with --target",
            )?,
    };
    let field = manifest
        .field(&target)
        .with_context(|| format!("`{target}` is not a field of the manifest"))?;
    let task = bundle.map_or_else(|| task_of(field), |b| b.task);
    let metric: Metric = match (&args.metric, bundle) {
        (Some(name), _) => name.parse()?,
        (None, Some(bundle)) => bundle.metric.parse()?,
        (None, None) => match task {
            TaskKind::BinaryClassification => Metric::RocAuc,
            TaskKind::MulticlassClassification => Metric::MulticlassAccuracy,
            TaskKind::Regression => Metric::Rmse,
            TaskKind::Survival => Metric::CIndex,
        },
    };
    let seed = args.seed.or(bundle.map(|b| b.split.seed)).unwrap_or(0);
    let split = bundle.map_or(
        SplitConfig {
            seed,
            ..SplitConfig::default()
        },
        |b| SplitConfig {
            seed,
            train: b.split.train,
            public_test: b.split.public_test,
        },
    );
    let limits = bundle.map_or_else(SandboxLimits::default, |b| b.sandbox.clone());
    let mut scoring = bundle.map(Bundle::score_context).unwrap_or_default();
    if !args.horizons.is_empty() {
        scoring.horizons = args.horizons.clone();
    }
    scoring.tau = args.tau.or(scoring.tau);
    let organizer_metrics = if args.also.is_empty() {
        bundle
            .map(Bundle::scorer_organizer_metrics)
            .unwrap_or_default()
    } else {
        args.also
            .iter()
            .map(|name| name.parse::<Metric>())
            .collect::<Result<_, _>>()?
    };
    // Curves at the horizons when a metric reads them, as the platform asks for them.
    let survival_grid = (task == TaskKind::Survival
        && std::iter::once(metric)
            .chain(organizer_metrics.iter().copied())
            .any(Metric::needs_survival_curves))
    .then(|| scoring.horizons.clone());
    Ok(TaskSpec {
        task,
        target,
        metric,
        split,
        seed,
        limits: sandbox_limits(&limits),
        scoring,
        organizer_metrics,
        survival_grid,
    })
}

/// The task a target implies: a survival time is survival; for a label, two categories or a
/// boolean is binary, more categories are multiclass, a bare number is a regression.
fn task_of(field: &Field) -> TaskKind {
    use medarena_arena::datasets_spec::FieldType;
    if field.role == Role::TimeToEvent {
        return TaskKind::Survival;
    }
    match (&field.categories, field.field_type) {
        (Some(categories), _) if categories.len() > 2 => TaskKind::MulticlassClassification,
        (Some(_), _) | (None, FieldType::Boolean) => TaskKind::BinaryClassification,
        _ => TaskKind::Regression,
    }
}

fn table(args: &RunArgs, manifest: &Manifest, seed: u64) -> anyhow::Result<RecordBatch> {
    if args.data.is_empty() {
        println!(
            "data     dummy data: {} rows from {} (seed {seed})",
            args.rows,
            args.dataset
                .as_deref()
                .unwrap_or(Path::new("the manifest"))
                .display()
        );
        return Ok(union_sites(
            manifest,
            &[("dummy".to_owned(), dummy(manifest, args.rows, seed))],
        )?);
    }
    let mut parts = Vec::new();
    for path in &args.data {
        let loaded = load_with_manifest(manifest, path, &LoadOptions::default())?;
        parts.push((site_of(path), loaded.batch));
    }
    let table = union_sites(manifest, &parts)?;
    println!(
        "data     {} rows from {} file(s) (run `medarena dataset validate` to check them)",
        table.num_rows(),
        parts.len()
    );
    Ok(table)
}

/// A competition's bundle, manifest and development data from the platform (as its dummy
/// runs see them).
fn from_server(
    args: &RunArgs,
    competition: &str,
) -> anyhow::Result<(Manifest, Bundle, RecordBatch)> {
    use crate::client::{Client, development_data, resolve};
    let client = Client::signed_in()?;
    let id = resolve(&client, "competitions", competition)?;
    let record = client.get(&format!("/competitions/{id}"))?;
    let bundle_yaml = record["bundle_yaml"]
        .as_str()
        .context("the server's competition has no bundle_yaml")?;
    let bundle = Bundle::from_yaml(bundle_yaml).context("the competition's bundle")?;
    let (csv, manifest) = development_data(&client, id, Some(args.rows), args.seed)?;
    let manifest = Manifest::from_str(&manifest).context("the competition's manifest")?;
    let loaded = medarena_arena::datasets_spec::load_bytes_with_manifest(
        &manifest,
        csv.as_bytes(),
        medarena_arena::datasets_spec::Format::Csv,
        "development data",
        &LoadOptions::default(),
    )?;
    let table = union_sites(&manifest, &[("development".to_owned(), loaded.batch)])?;
    println!(
        "data     {} rows of `{}`'s development data from {} (the platform's dummy-run table)",
        table.num_rows(),
        bundle.slug,
        client.base()
    );
    Ok((manifest, bundle, table))
}

fn site_of(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("site")
        .to_owned()
}

fn ms(duration: std::time::Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}

fn timings(timings: &Timings) -> String {
    let compile = timings.compile.map_or_else(|| "cached".to_owned(), ms);
    format!(
        "pre-check {}, encode {}, compile {compile}, start-up {}, data in {}, fit {}, predict {}, total {}",
        ms(timings.precheck),
        ms(timings.encode),
        ms(timings.startup),
        ms(timings.data_in),
        ms(timings.fit),
        ms(timings.predict),
        ms(timings.total)
    )
}

fn report(spec: &TaskSpec, evaluation: &Evaluation) -> anyhow::Result<()> {
    println!(
        "split    train {}, public test {}, private test {} (seed {}){}",
        evaluation.train_rows,
        evaluation.public.rows(),
        evaluation.private.rows(),
        spec.split.seed,
        if evaluation.rows_without_target > 0 {
            format!(
                ", {} rows without a target left out",
                evaluation.rows_without_target
            )
        } else {
            String::new()
        }
    );
    println!("status   ok");
    let show = |score: Result<f64, EvaluationError>| match score {
        Ok(value) => format!("{value:.4}"),
        Err(err) => format!("undefined ({err})"),
    };
    let test = evaluation.test();
    for (label, metric) in std::iter::once(("metric", spec.metric))
        .chain(spec.organizer_metrics.iter().map(|&m| ("also", m)))
    {
        println!(
            "{label:<8} {}: {} on both test parts (public {}, private {})",
            metric.name(),
            show(test.score(metric)),
            show(evaluation.public.score(metric)),
            show(evaluation.private.score(metric)),
        );
    }
    println!("time     {}", timings(&evaluation.output.timings));
    print_debug(&evaluation.output.debug_log);
    Ok(())
}

/// The platform's `row`-level scoring of the same run: block by block, failures scored
/// with the fallback prediction, the mean of the clamped block scores, and the noise the
/// competition would add to it.
fn partitioned(
    sandbox: &Sandbox,
    module: &[u8],
    manifest: &Manifest,
    table: &RecordBatch,
    spec: &TaskSpec,
    blocks: u32,
    bundle: Option<&Bundle>,
) -> anyhow::Result<()> {
    let clamp = bundle.map_or_else(ClampBounds::default, |b| {
        b.privacy.public_score.clamp_bounds()
    });
    let range = release_range(spec.metric, &clamp)?;
    let sealed = evaluate_sealed(
        sandbox,
        module,
        manifest,
        table,
        spec,
        blocks,
        &DeclaredBounds::default(),
    )
    .map_err(|err| anyhow::anyhow!("{err}"))?;
    let mean = |part: Part| -> anyhow::Result<f64> {
        let scores = sealed
            .blocks
            .iter()
            .map(|block| {
                let scored = if part == Part::PrivateTest {
                    &block.private
                } else {
                    &block.public
                };
                block_score(
                    spec.metric,
                    &scored.truth,
                    &scored.predictions,
                    &scored.context,
                    &clamp,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(block_mean(&scores, range)?)
    };
    let statuses = sealed
        .statuses()
        .iter()
        .map(|(status, count)| format!("{count} {status}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "blocks   {blocks} blocks of about {} rows: {statuses} (a failed block scores the fallback prediction)",
        sealed.rows_with_target / blocks as usize
    );
    println!(
        "released {}: public {:.4}, private {:.4} before noise (the mean of the blocks' clamped scores){}",
        spec.metric.name(),
        mean(Part::PublicTest)?,
        mean(Part::PrivateTest)?,
        bundle
            .and_then(Bundle::release_terms)
            .filter(|t| t.blocks == blocks)
            .map_or_else(String::new, |t| format!(
                "; the competition adds noise of ±{:.4} (95%) at ε = {}",
                t.public_half_width_95, t.public_epsilon
            ))
    );
    Ok(())
}

fn print_debug(log: &str) {
    if log.trim().is_empty() {
        println!("debug    (no debug output)");
    } else {
        println!("debug output of the submission:");
        for line in log.lines() {
            println!("  | {line}");
        }
    }
}
