//! `cinediff eval`: run a matrix of methods × operators × accelerations × seeds over a data set,
//! storing every finished cell (so a re-run skips it), and write metrics.csv, summary.json and
//! report.html. The matrix, the cells and the page are built by `cinediff::eval`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cinediff::bundle::{Bundle, OperatorKind};
use cinediff::eval::external::ExternalMethod;
use cinediff::eval::report::{build_report, ReportInput, ShowMethod, Showcase};
use cinediff::eval::table::{rows_from_csv, rows_to_csv};
use cinediff::eval::{
    cell_id, conditions, fingerprint, item_from_bundle, items_from_array, measure, method,
    method_names, run_cell, summarize, Condition, EvalItem, EvalSettings, FrameRow,
    MeasurementSettings, MethodEntry, Models, PriorModel, METHODS,
};
use cinediff::io::bart::BartPics;
use cinediff::io::bundle::read_bundle;
use cinediff::io::model_dir::{
    load_aid, load_aps, load_denoiser, load_transition, read_aps_config, write_json,
};
use cinediff::io::npy::{read_npy, write_npy_c64, write_npy_f32, NpyArray};
use cinediff::method_settings::SamplerKind;
use cinediff::metrics::magnitude;
use cinediff::nn::device::default_device;
use cinediff::reconstruction::IntensityMatch;
use cinediff::sequence::Aid;
use clap::Args;
use num_complex::Complex32;

use crate::progress::Progress;
use crate::reconstruct::SamplerArg;
use crate::sample::SpacingArg;
use crate::simulate::{MaskArg, OperatorArg};

/// Default transition model of seqdiff+ (used when the directory exists).
const DEFAULT_TRANSITION: &str = "models/cine64-transition";
/// Default AID model (used when the directory exists).
const DEFAULT_AID: &str = "models/cine64-aid";
/// Default APS model (used when the directory exists).
const DEFAULT_APS: &str = "models/cine64-aps-mri4x";

/// Options of `cinediff eval`.
#[derive(Args)]
#[command(after_help = "Examples:\n  \
cinediff eval --data d.npy --out rep/\n  \
cinediff eval --data d.npy --out rep/ --methods zero-filled,tv,seqdiff --accels 4 --seeds 0,1 --limit-frames 8\n  \
cinediff eval --data bundles/ --out rep/          # a folder of measurement bundles (with truth.npy)\n  \
cinediff eval --data d.npy --out rep/ --baseline bart   # adds BART's pics, λ swept, best kept\n\n\
--data is .npy float32/complex64 images [N, H, W] (one-frame items) or sequences [N, T, H, W],\n\
measured here for every operator x acceleration x seed (masks and noise from the seed), or a\n\
bundle directory / a folder of bundle directories, reconstructed as they are. Every cell (item x\n\
operator x acceleration x seed x method) is stored in OUT/cells/<id>/ (cell.json, rows.csv,\n\
recon.npy, std.npy) and skipped when the command is run again with the same settings; after each\n\
cell OUT/metrics.csv, OUT/summary.json and OUT/report.html (one self-contained page) are\n\
rewritten. Default matrix: every method that applies x MRI 4x and 8x, seed 0 (bart-pics only with\n\
--baseline bart).")]
pub struct EvalArgs {
    /// Data: .npy [N, H, W] / [N, T, H, W] (real or complex), or bundle directories.
    #[arg(long)]
    data: PathBuf,
    /// Output directory (created if missing; an earlier eval there is resumed).
    #[arg(long)]
    out: PathBuf,
    /// Methods, comma-separated [default: every method that applies].
    #[arg(long, value_delimiter = ',')]
    methods: Vec<String>,
    /// Operators the data are measured with (.npy data).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [OperatorArg::Mri])]
    operators: Vec<OperatorArg>,
    /// Accelerations R (operators with a mask).
    #[arg(long, value_delimiter = ',', default_values_t = [4.0, 8.0])]
    accels: Vec<f64>,
    /// Seeds (measurement and reconstruction).
    #[arg(long, value_delimiter = ',', default_values_t = [0u64])]
    seeds: Vec<u64>,
    /// MRI receive coils (synthetic maps).
    #[arg(long, default_value_t = 4, help_heading = "Measurement")]
    coils: usize,
    /// Noise σ per measured entry.
    #[arg(long, default_value_t = 0.01, help_heading = "Measurement")]
    noise: f64,
    /// MRI calibration lines [default: 8 % of the width below 8x, 4 % from 8x on].
    #[arg(long, help_heading = "Measurement")]
    acs: Option<usize>,
    /// Sampling pattern (fresh every frame).
    #[arg(long, value_enum, default_value_t = MaskArg::Random, help_heading = "Measurement")]
    mask: MaskArg,
    /// Use the first N items only.
    #[arg(long, value_name = "N")]
    limit_items: Option<usize>,
    /// Use the first N frames of every item only.
    #[arg(long, value_name = "N")]
    limit_frames: Option<usize>,
    /// Prior model directory (diffusion methods).
    #[arg(
        long,
        default_value = "models/cine64-small",
        help_heading = "Diffusion methods"
    )]
    model: PathBuf,
    /// Transition model of seqdiff+ [default: models/cine64-transition when it exists, else
    /// seqdiff+ is skipped].
    #[arg(long, value_name = "DIR", help_heading = "Diffusion methods")]
    transition: Option<PathBuf>,
    /// AID model of method aid [default: models/cine64-aid when it exists, else aid is skipped].
    #[arg(long, value_name = "DIR", help_heading = "Diffusion methods")]
    aid: Option<PathBuf>,
    /// APS model of method aps [default: models/cine64-aps-mri4x when it exists, else aps is
    /// skipped]; aps runs only on measurements of the operator and acceleration it was trained for.
    #[arg(long, value_name = "DIR", help_heading = "Diffusion methods")]
    aps: Option<PathBuf>,
    /// Draws averaged by aps (≥ 2 adds std maps).
    #[arg(long, default_value_t = 64, help_heading = "Diffusion methods")]
    aps_samples: usize,
    /// Reverse steps of dps, ddim-dc, dds, diffpir and independent.
    #[arg(long, default_value_t = 50, help_heading = "Diffusion methods")]
    steps: usize,
    /// Posterior draws averaged by dps, ddim-dc, dds, diffpir (≥ 2 adds std maps; N× the time).
    #[arg(long, default_value_t = 1, help_heading = "Diffusion methods")]
    samples: usize,
    /// Sampler driven by independent / seqdiff / seqdiff+.
    #[arg(long, value_enum, default_value_t = SamplerArg::DdimDc, help_heading = "Diffusion methods")]
    sequence_sampler: SamplerArg,
    /// The grid of seqdiff / seqdiff+ (frame 0 runs all of it).
    #[arg(long, default_value_t = 200, help_heading = "Diffusion methods")]
    sequence_steps: usize,
    /// seqdiff / seqdiff+: steps of every later frame (the last N of the grid).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        help_heading = "Diffusion methods"
    )]
    warm_start: usize,
    /// Particles of independent / seqdiff / seqdiff+ (≥ 2 adds std maps).
    #[arg(long, default_value_t = 2, help_heading = "Diffusion methods")]
    particles: usize,
    /// DPS step size ζ.
    #[arg(long, default_value_t = 1.0, help_heading = "Diffusion methods")]
    zeta: f32,
    /// ddim-dc: gradient steps K per reverse step.
    #[arg(long, default_value_t = 10, help_heading = "Diffusion methods")]
    dc_steps: usize,
    /// ddim-dc: gradient step size in units of 1/‖A‖².
    #[arg(long, default_value_t = 1.5, help_heading = "Diffusion methods")]
    dc_step_size: f32,
    /// dds: CG iterations per step; diffpir: CG iterations of the proximal step.
    #[arg(long, help_heading = "Diffusion methods")]
    cg_iterations: Option<usize>,
    /// DDIM η (dds; ddim-dc: DDIM re-noise instead of fresh noise).
    #[arg(long, help_heading = "Diffusion methods")]
    eta: Option<f32>,
    /// diffpir: λ.
    #[arg(long, default_value_t = 1.0, help_heading = "Diffusion methods")]
    diffpir_lambda: f32,
    /// diffpir: ζ.
    #[arg(long, default_value_t = 0.3, help_heading = "Diffusion methods")]
    diffpir_zeta: f32,
    /// Timestep spacing of every grid.
    #[arg(long, value_enum, default_value_t = SpacingArg::Linspace, help_heading = "Diffusion methods")]
    spacing: SpacingArg,
    /// Frames per network call (dps, ddim-dc, dds, diffpir).
    #[arg(long, default_value_t = 8, help_heading = "Diffusion methods")]
    batch: usize,
    /// tv / tv-t: λ relative to max|Aᴴy|.
    #[arg(long, default_value_t = 0.001, help_heading = "Classic methods")]
    tv_lambda: f64,
    /// tv-t: temporal λ_t relative to max|Aᴴy|.
    #[arg(long, default_value_t = 0.003, help_heading = "Classic methods")]
    tv_lambda_t: f64,
    /// wavelet: λ relative to max|Aᴴy|.
    #[arg(long, default_value_t = 0.001, help_heading = "Classic methods")]
    wavelet_lambda: f64,
    /// External reference reconstructions to add: `bart` runs `bart pics` (ℓ1-wavelet, plus TV
    /// along time for cines) on the same k-space with λ swept over a grid and the best kept, as
    /// method bart-pics (needs `bart` on the PATH: apt-get install bart).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        help_heading = "Classic methods"
    )]
    baseline: Vec<BaselineArg>,
    /// Re-run every cell (finished cells in --out are discarded).
    #[arg(long)]
    force: bool,
}

/// Reference reconstructions by other programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BaselineArg {
    /// BART's `pics` (method bart-pics).
    Bart,
}

/// The stored description of a finished cell (`cell.json`, written last).
#[derive(serde::Serialize, serde::Deserialize)]
struct CellRecord {
    id: String,
    method: String,
    item: String,
    operator: String,
    acceleration: f64,
    seed: u64,
    fingerprint: String,
    seconds: f64,
    frames: usize,
    has_std: bool,
    settings: std::collections::BTreeMap<String, String>,
}

/// One planned cell.
struct Planned {
    condition: usize,
    entry: &'static MethodEntry,
    id: String,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let settings = eval_settings(&args);
    settings.validate()?;
    let measurement = MeasurementSettings {
        coils: args.coils,
        noise_sigma: args.noise,
        acs: args.acs,
        mask: args.mask.into(),
    };
    if args.seeds.is_empty() || args.accels.is_empty() || args.operators.is_empty() {
        anyhow::bail!("--seeds, --accels and --operators need at least one value each");
    }
    if let Some(r) = args.accels.iter().find(|r| !(r.is_finite() && **r >= 1.0)) {
        anyhow::bail!("invalid --accels: expected values ≥ 1, got {r}");
    }
    let operators: Vec<OperatorKind> = args.operators.iter().map(|&o| o.into()).collect();
    let mut notes = Vec::new();
    let (mut entries, selected) = select_methods(&args, &mut notes)?;
    let transition_dir = selected.transition.clone();

    let items = read_items(&args)?;
    let conds = conditions(&items, &operators, &args.accels, &args.seeds);
    // An APS model reconstructs the operator family it was trained for only.
    let aps_family = match &selected.aps {
        Some(dir) if entries.iter().any(|e| e.needs_aps()) => {
            let family = read_aps_config(dir)
                .with_context(|| format!("reading the APS model {}", dir.display()))?
                .family;
            notes.push(format!(
                "aps runs on {} {}× only (its model's training family)",
                family.operator.name(),
                family.acceleration
            ));
            Some(family)
        }
        _ => None,
    };
    let mut plan: Vec<Planned> = Vec::new();
    for (k, c) in conds.iter().enumerate() {
        let frames = items[c.item].shape()[0];
        for entry in &entries {
            let in_family = aps_family.as_ref().is_none_or(|f| {
                !entry.needs_aps()
                    || (f.operator == c.operator
                        && (!cinediff::eval::uses_acceleration(c.operator)
                            || (f.acceleration - c.acceleration).abs() < 1e-9))
            });
            if entry.applies_to(c.operator, frames) && in_family {
                plan.push(Planned {
                    condition: k,
                    entry,
                    id: cell_id(&items[c.item].name, c, entry.name),
                });
            }
        }
    }
    entries.retain(|e| plan.iter().any(|p| p.entry.name == e.name));
    if plan.is_empty() {
        anyhow::bail!(
            "no cell to run: none of the methods applies to the operators and frame counts of {}",
            args.data.display()
        );
    }
    // Cheapest method first (estimated network evaluations per frame), each over every
    // measurement: a long run has the cheap methods everywhere before the expensive ones.
    let mut costs = Vec::with_capacity(plan.len());
    for p in &plan {
        let frames = items[conds[p.condition].item].shape()[0];
        costs.push(cinediff::eval::estimated_cost(p.entry, &settings, frames)?);
    }
    let rank = |p: &Planned| METHODS.iter().position(|m| m.name == p.entry.name);
    let mut order: Vec<usize> = (0..plan.len()).collect();
    order.sort_by(|&a, &b| {
        costs[a]
            .total_cmp(&costs[b])
            .then(rank(&plan[a]).cmp(&rank(&plan[b])))
            .then(plan[a].condition.cmp(&plan[b].condition))
    });
    let mut slots: Vec<Option<Planned>> = plan.into_iter().map(Some).collect();
    let run_order: Vec<Planned> = order.iter().filter_map(|&k| slots[k].take()).collect();

    // Models, checked against the data before any long work.
    let device = default_device();
    let prior_net = if entries.iter().any(|e| e.needs_prior()) {
        let net = load_denoiser(&args.model, &device)
            .with_context(|| format!("loading the prior {}", args.model.display()))?;
        check_prior_fits(&net.config().unet, &items, &args.model)?;
        Some(net)
    } else {
        None
    };
    let transition = match (
        &transition_dir,
        entries.iter().any(|e| e.needs_transition()),
    ) {
        (Some(dir), true) => Some(
            load_transition(dir, &device)
                .with_context(|| format!("loading the transition model {}", dir.display()))?,
        ),
        _ => None,
    };
    let bart = if entries.iter().any(|e| e.needs_external()) {
        let bart = BartPics::from_path()?.ok_or_else(|| {
            anyhow::anyhow!(
                "bart-pics needs BART: `bart` is not on the PATH (Debian/Ubuntu: apt-get install bart)"
            )
        })?;
        Some(bart)
    } else {
        None
    };
    let aid = match (&selected.aid, entries.iter().any(|e| e.needs_aid())) {
        (Some(dir), true) => {
            let (config, net) = load_aid(dir, &device)
                .with_context(|| format!("loading the AID model {}", dir.display()))?;
            check_prior_fits(&config.network.unet, &items, dir)?;
            let clip = Some((config.diffusion.noise_schedule()?, 1.0));
            Some(Aid::new(net, clip, &device)?)
        }
        _ => None,
    };
    let aps = match (&selected.aps, entries.iter().any(|e| e.needs_aps())) {
        (Some(dir), true) => Some(
            load_aps(dir, &device)
                .with_context(|| format!("loading the APS model {}", dir.display()))?,
        ),
        _ => None,
    };
    let models = Models {
        external: bart.as_ref().map(|b| b as &dyn ExternalMethod),
        aid: aid.as_ref(),
        aps: aps.as_ref(),
        prior: match &prior_net {
            Some(net) => Some(PriorModel {
                denoiser: net,
                schedule: net.config().noise_schedule()?,
                normalization: net.config().normalization,
            }),
            None => None,
        },
        transition: transition.as_ref(),
    };
    let model_id = format!(
        "prior={} transition={}",
        model_identity(prior_net.as_ref().map(|_| args.model.as_path())),
        model_identity(transition.as_ref().and(transition_dir.as_deref()))
    );
    let external_id = bart.as_ref().map_or("none".into(), |b| b.identity());
    // Models only some methods use enter only those methods' fingerprints.
    let aid_id = format!(
        "{model_id} aid={}",
        model_identity(aid.as_ref().and(selected.aid.as_deref()))
    );
    let aps_id = format!(
        "aps={}",
        model_identity(aps.as_ref().and(selected.aps.as_deref()))
    );

    prepare_out(&args.out, args.force)?;
    let cells_dir = args.out.join("cells");
    std::fs::create_dir_all(&cells_dir)
        .with_context(|| format!("creating {}", cells_dir.display()))?;

    let method_order: Vec<&str> = entries.iter().map(|e| e.name).collect();
    let context = OutputContext {
        args: &args,
        settings: &settings,
        measurement: &measurement,
        items: &items,
        conds: &conds,
        plan: &run_order,
        method_order: &method_order,
        notes: &notes,
        external: bart.as_ref().map(|b| b.identity()),
    };

    for note in &notes {
        eprintln!("note: {note}");
    }
    let started = Instant::now();
    let (mut ran, mut skipped) = (0usize, 0usize);
    let total = run_order.len();
    let mut bundle_cache: Option<(usize, Bundle)> = None;
    for (n, cell) in run_order.iter().enumerate() {
        let c = &conds[cell.condition];
        let item = &items[c.item];
        if bundle_cache.as_ref().map(|(k, _)| *k) != Some(cell.condition) {
            bundle_cache = Some((cell.condition, measure(item, c, &measurement)?));
        }
        let bundle = &bundle_cache.as_ref().expect("just set").1;
        let identity = if cell.entry.needs_external() {
            &external_id
        } else if cell.entry.needs_aid() {
            &aid_id
        } else if cell.entry.needs_aps() {
            &aps_id
        } else {
            &model_id
        };
        let print = fingerprint(cell.entry, &settings, bundle, identity);
        let dir = cells_dir.join(&cell.id);
        match stored_cell(&dir) {
            Some(record) if record.fingerprint == print => {
                skipped += 1;
                continue;
            }
            Some(_) => eprintln!(
                "cell {}: settings or data changed since it was stored; running it again",
                cell.id
            ),
            None => {}
        }
        eprintln!("[{}/{total}] cell {} ...", n + 1, cell.id);
        let mut progress: Option<Progress> = None;
        let output = run_cell(
            &item.name,
            c,
            bundle,
            cell.entry,
            &settings,
            &models,
            &mut |done, all| {
                progress
                    .get_or_insert_with(|| Progress::new(&cell.id, all))
                    .update(done, "");
            },
        )
        .with_context(|| format!("cell {}", cell.id))?;
        if let Some(p) = progress {
            p.finish();
        }
        store_cell(&dir, cell, c, item, &output, &print, bundle.spec().complex)?;
        ran += 1;
        let mean_psnr = output.rows.iter().map(|r| r.psnr).sum::<f64>() / output.rows.len() as f64;
        eprintln!(
            "[{}/{total}] cell {} done: {:.1} s, PSNR {mean_psnr:.2} dB",
            n + 1,
            cell.id,
            output.seconds
        );
        write_outputs(&context)?;
    }
    if ran == 0 {
        write_outputs(&context)?;
    }
    eprintln!(
        "eval: ran {ran} cell(s), skipped {skipped} already finished, in {:.1} s; wrote {}, {}, {}",
        started.elapsed().as_secs_f64(),
        args.out.join("metrics.csv").display(),
        args.out.join("summary.json").display(),
        args.out.join("report.html").display()
    );
    Ok(())
}

fn eval_settings(args: &EvalArgs) -> EvalSettings {
    let d = EvalSettings::default();
    EvalSettings {
        tv_lambda: args.tv_lambda,
        tv_lambda_t: args.tv_lambda_t,
        wavelet_lambda: args.wavelet_lambda,
        sampler: cinediff::method_settings::SamplerSettings {
            zeta: args.zeta,
            dc_steps: args.dc_steps,
            dc_step_size: args.dc_step_size,
            cg_iterations: args.cg_iterations,
            eta: args.eta,
            diffpir_lambda: args.diffpir_lambda,
            diffpir_zeta: args.diffpir_zeta,
            sigma_n: None,
        },
        steps: args.steps,
        samples: args.samples,
        sequence_sampler: SamplerKind::from(args.sequence_sampler),
        sequence_steps: args.sequence_steps,
        warm_start: args.warm_start,
        particles: args.particles,
        aps_samples: args.aps_samples,
        batch: args.batch,
        intensity: IntensityMatch::Auto,
        clip_x0: Some(1.0),
        spacing: args.spacing.into(),
        ..d
    }
}

/// The registry entries to run and the model directories of seqdiff+, aid and aps.
fn select_methods(
    args: &EvalArgs,
    notes: &mut Vec<String>,
) -> anyhow::Result<(Vec<&'static MethodEntry>, SelectedModels)> {
    let explicit = !args.methods.is_empty();
    let mut entries: Vec<&'static MethodEntry> = if explicit {
        let mut v = Vec::new();
        for name in &args.methods {
            let e = method(name.trim()).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown method '{}' in --methods: expected some of {}",
                    name.trim(),
                    method_names().join(", ")
                )
            })?;
            if !v.iter().any(|x: &&MethodEntry| x.name == e.name) {
                v.push(e);
            }
        }
        v
    } else {
        METHODS.iter().filter(|e| !e.needs_external()).collect()
    };
    if args.baseline.contains(&BaselineArg::Bart) && !entries.iter().any(|e| e.needs_external()) {
        entries.extend(method("bart-pics"));
    }
    let transition = optional_model(
        &args.transition,
        DEFAULT_TRANSITION,
        "seqdiff+",
        "--transition",
        MethodEntry::needs_transition,
        explicit,
        &mut entries,
        notes,
    )?;
    let aid = optional_model(
        &args.aid,
        DEFAULT_AID,
        "aid",
        "--aid",
        MethodEntry::needs_aid,
        explicit,
        &mut entries,
        notes,
    )?;
    let aps = optional_model(
        &args.aps,
        DEFAULT_APS,
        "aps",
        "--aps",
        MethodEntry::needs_aps,
        explicit,
        &mut entries,
        notes,
    )?;
    Ok((
        entries,
        SelectedModels {
            transition,
            aid,
            aps,
        },
    ))
}

/// The model directories of the methods that need their own model.
struct SelectedModels {
    transition: Option<PathBuf>,
    aid: Option<PathBuf>,
    aps: Option<PathBuf>,
}

/// The directory of a model some methods need: `given`, else `default` when it exists. Without
/// one, those methods are dropped with a note (an error when they were asked for by name).
#[allow(clippy::too_many_arguments)]
fn optional_model(
    given: &Option<PathBuf>,
    default: &str,
    method: &str,
    flag: &str,
    needs: fn(&MethodEntry) -> bool,
    explicit: bool,
    entries: &mut Vec<&'static MethodEntry>,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<PathBuf>> {
    let dir = match given {
        Some(dir) => Some(dir.clone()),
        None => Some(PathBuf::from(default)).filter(|d| d.is_dir()),
    };
    if dir.is_none() && entries.iter().any(|e| needs(e)) {
        let note =
            format!("{method} skipped: no model ({default} does not exist; pass {flag} DIR)");
        if explicit {
            anyhow::bail!("{note}");
        }
        notes.push(note);
        entries.retain(|e| !needs(e));
    }
    Ok(dir)
}

/// Items from a .npy file or bundle directories.
fn read_items(args: &EvalArgs) -> anyhow::Result<Vec<EvalItem>> {
    let data = &args.data;
    if data.is_dir() {
        let mut dirs: Vec<PathBuf> = if data.join(cinediff::bundle::SPEC_FILE).is_file() {
            vec![data.clone()]
        } else {
            let mut v: Vec<PathBuf> = std::fs::read_dir(data)
                .with_context(|| format!("reading {}", data.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join(cinediff::bundle::SPEC_FILE).is_file())
                .collect();
            v.sort();
            v
        };
        if dirs.is_empty() {
            anyhow::bail!(
                "{}: expected a .npy file, a bundle directory or a folder of bundle directories (with {}), found none",
                data.display(),
                cinediff::bundle::SPEC_FILE
            );
        }
        if let Some(k) = args.limit_items {
            if k == 0 {
                anyhow::bail!("invalid --limit-items: expected at least 1, got 0");
            }
            dirs.truncate(k);
        }
        let mut items = Vec::new();
        for dir in dirs {
            let bundle = read_bundle(&dir)?;
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "bundle".into());
            items.push(
                item_from_bundle(&name, bundle, args.limit_frames)
                    .with_context(|| format!("{}", dir.display()))?,
            );
        }
        return Ok(items);
    }
    let array = read_npy(data)?;
    let (shape, values, complex) = match array {
        NpyArray::Complex { shape, data } => (shape, data, true),
        NpyArray::Real { shape, data } => (
            shape,
            data.into_iter().map(|v| Complex32::new(v, 0.0)).collect(),
            false,
        ),
        NpyArray::U8 { .. } => anyhow::bail!(
            "{}: expected float32 or complex64 images, got uint8",
            data.display()
        ),
    };
    items_from_array(&shape, values, complex, args.limit_items, args.limit_frames)
        .with_context(|| format!("{}", data.display()))
}

/// Fails unless the prior's images have the data's size (and 2 channels for complex data).
fn check_prior_fits(
    unet: &cinediff::nn::unet::UNetConfig,
    items: &[EvalItem],
    model: &Path,
) -> anyhow::Result<()> {
    for item in items {
        let [_, h, w] = item.shape();
        if [h, w] != [unet.image_size, unet.image_size] {
            anyhow::bail!(
                "data image size {h}x{w} ({}) does not match the prior {} ({}x{}): choose a prior of that size or classic --methods only",
                item.name,
                model.display(),
                unet.image_size,
                unet.image_size
            );
        }
        if item.complex() && unet.in_channels != 2 {
            anyhow::bail!(
                "complex data need a 2-channel (re, im) prior; {} has {} channel(s)",
                model.display(),
                unet.in_channels
            );
        }
    }
    Ok(())
}

/// A model directory and the size of its files (part of every diffusion cell's fingerprint).
fn model_identity(dir: Option<&Path>) -> String {
    let Some(dir) = dir else {
        return "none".into();
    };
    let mut sizes = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut files: Vec<(String, u64)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().map(|m| m.len()).unwrap_or(0),
                )
            })
            .filter(|(n, _)| {
                n.ends_with(".json") || n.ends_with(".safetensors") || n.ends_with(".bpk")
            })
            .collect();
        files.sort();
        sizes = files.into_iter().map(|(n, s)| format!("{n}:{s}")).collect();
    }
    format!("{} [{}]", dir.display(), sizes.join(" "))
}

/// Creates `out`, refusing a non-empty directory that is not an earlier eval; `force` discards
/// finished cells.
fn prepare_out(out: &Path, force: bool) -> anyhow::Result<()> {
    if out.exists() && !out.is_dir() {
        anyhow::bail!("--out {} exists and is not a directory", out.display());
    }
    if out.is_dir() {
        let non_empty = std::fs::read_dir(out)
            .with_context(|| format!("reading {}", out.display()))?
            .next()
            .is_some();
        if non_empty && !out.join("cells").is_dir() {
            anyhow::bail!(
                "--out {} is a non-empty directory that holds no earlier eval (no cells/); choose another --out",
                out.display()
            );
        }
        if force && out.join("cells").is_dir() {
            std::fs::remove_dir_all(out.join("cells"))
                .with_context(|| format!("removing {}", out.join("cells").display()))?;
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))
}

/// The record of a finished cell in `dir`, if it is complete.
fn stored_cell(dir: &Path) -> Option<CellRecord> {
    let text = std::fs::read_to_string(dir.join("cell.json")).ok()?;
    let record: CellRecord = serde_json::from_str(&text).ok()?;
    let complete = dir.join("rows.csv").is_file()
        && dir.join("recon.npy").is_file()
        && (!record.has_std || dir.join("std.npy").is_file());
    complete.then_some(record)
}

#[allow(clippy::too_many_arguments)]
fn store_cell(
    dir: &Path,
    cell: &Planned,
    c: &Condition,
    item: &EvalItem,
    output: &cinediff::eval::CellOutput,
    fingerprint: &str,
    complex: bool,
) -> anyhow::Result<()> {
    // cell.json goes last: without it the cell counts as unfinished.
    let record_path = dir.join("cell.json");
    if record_path.exists() {
        std::fs::remove_file(&record_path)
            .with_context(|| format!("removing {}", record_path.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let shape = item.shape();
    if complex {
        write_npy_c64(&dir.join("recon.npy"), &shape, &output.recon)?;
    } else {
        let re: Vec<f32> = output.recon.iter().map(|v| v.re).collect();
        write_npy_f32(&dir.join("recon.npy"), &shape, &re)?;
    }
    let std_path = dir.join("std.npy");
    match &output.std {
        Some(std) => write_npy_f32(&std_path, &shape, std)?,
        None if std_path.exists() => std::fs::remove_file(&std_path)
            .with_context(|| format!("removing {}", std_path.display()))?,
        None => {}
    }
    let rows_path = dir.join("rows.csv");
    std::fs::write(&rows_path, rows_to_csv(&output.rows))
        .with_context(|| format!("writing {}", rows_path.display()))?;
    let record = CellRecord {
        id: cell.id.clone(),
        method: cell.entry.name.into(),
        item: item.name.clone(),
        operator: c.operator.name().into(),
        acceleration: c.acceleration,
        seed: c.seed,
        fingerprint: fingerprint.into(),
        seconds: output.seconds,
        frames: shape[0],
        has_std: output.std.is_some(),
        settings: output
            .settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    write_json(&record_path, &record)?;
    Ok(())
}

/// What the outputs are rebuilt from.
struct OutputContext<'a> {
    args: &'a EvalArgs,
    settings: &'a EvalSettings,
    measurement: &'a MeasurementSettings,
    items: &'a [EvalItem],
    conds: &'a [Condition],
    plan: &'a [Planned],
    method_order: &'a [&'a str],
    notes: &'a [String],
    /// The external program and its sweep (bart-pics), when it runs.
    external: Option<String>,
}

/// Rewrites metrics.csv, summary.json and report.html from the finished cells of the plan.
fn write_outputs(ctx: &OutputContext<'_>) -> anyhow::Result<()> {
    let out = &ctx.args.out;
    let cells_dir = out.join("cells");
    let mut rows: Vec<FrameRow> = Vec::new();
    let mut done: Vec<&Planned> = Vec::new();
    for cell in ctx.plan {
        let dir = cells_dir.join(&cell.id);
        if stored_cell(&dir).is_none() {
            continue;
        }
        let path = dir.join("rows.csv");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        rows.extend(rows_from_csv(&text, &path.display().to_string())?);
        done.push(cell);
    }
    write_atomic(&out.join("metrics.csv"), rows_to_csv(&rows).as_bytes())?;
    let summary = summarize(&rows, ctx.method_order);
    let settings_table = settings_table(ctx);
    let summary_json = serde_json::json!({
        "data": ctx.args.data.display().to_string(),
        "cells_finished": done.len(),
        "cells_planned": ctx.plan.len(),
        "convention": "mean ± sample std over frames (psnr, ssim, nrmse, seconds_per_frame, nfe_per_frame); psnr_over_sequences: over the per-sequence means",
        "settings": settings_table.iter().cloned().collect::<std::collections::BTreeMap<String, String>>(),
        "groups": summary,
    });
    let text = serde_json::to_string_pretty(&summary_json).context("serialising summary.json")?;
    write_atomic(&out.join("summary.json"), text.as_bytes())?;

    let showcases = showcases(ctx, &done, &rows)?;
    let [t, h, w] = ctx.items.first().map_or([0, 0, 0], |i| i.shape());
    let complex = ctx.items.first().is_some_and(|i| i.complex());
    let overview = vec![
        format!(
            "Data: {} — {} item(s) of {t} frame(s) {h}×{w} ({}). Every method × operator × acceleration × seed; one row per frame in metrics.csv.",
            ctx.args.data.display(),
            ctx.items.len(),
            if complex { "complex" } else { "real" }
        ),
        format!(
            "Measurement: ky–t {} masks (fresh every frame), {} coils (MRI), noise σ {}, calibration lines {}.",
            ctx.measurement.mask.name(),
            ctx.measurement.coils,
            ctx.measurement.noise_sigma,
            ctx.measurement
                .acs
                .map_or("8 % of the width below 8×, 4 % from 8× on".to_string(), |a| a.to_string())
        ),
    ];
    let methods: Vec<(String, String)> = ctx
        .method_order
        .iter()
        .filter_map(|m| method(m))
        .map(|e| (e.name.to_string(), e.description.to_string()))
        .collect();
    let html = build_report(&ReportInput {
        title: "cinediff evaluation".into(),
        overview,
        settings: settings_table,
        methods,
        rows: &rows,
        summary: &summary,
        showcases: &showcases,
        cells: (done.len(), ctx.plan.len()),
        notes: ctx.notes.to_vec(),
    })?;
    write_atomic(&out.join("report.html"), html.as_bytes())?;
    Ok(())
}

fn settings_table(ctx: &OutputContext<'_>) -> Vec<(String, String)> {
    let a = ctx.args;
    let s = ctx.settings;
    let list = |v: Vec<String>| v.join(", ");
    vec![
        ("operators".into(), list(ctx.conds.iter().map(|c| c.operator.name().to_string()).fold(Vec::new(), dedup))),
        ("accelerations".into(), list(a.accels.iter().map(|r| r.to_string()).collect())),
        ("seeds".into(), list(a.seeds.iter().map(|r| r.to_string()).collect())),
        ("prior".into(), a.model.display().to_string()),
        ("single-frame samplers".into(), format!("{} steps, {} draw(s), batch {}", s.steps, s.samples, s.batch)),
        ("sequence strategies".into(), format!(
            "{} sampler; independent {} steps per frame; seqdiff/seqdiff+ {}-step grid, {} warm steps; {} particle(s)",
            s.sequence_sampler.name(), s.steps, s.sequence_steps, s.warm_start, s.particles
        )),
        ("aid, aps".into(), format!(
            "aid: the AID model's network, {} steps per frame with the sequence sampler; aps: {} draws per frame",
            s.steps, s.aps_samples
        )),
        ("dps".into(), format!("ζ = {}", s.sampler.zeta)),
        ("ddim-dc".into(), format!("K = {}, step {}/L", s.sampler.dc_steps, s.sampler.dc_step_size)),
        ("dds".into(), format!("CG iterations {}", s.sampler.cg_iterations.map_or("5 (default)".into(), |v| v.to_string()))),
        ("diffpir".into(), format!("λ = {}, ζ = {}, σ_n = the measurement's", s.sampler.diffpir_lambda, s.sampler.diffpir_zeta)),
        ("tv".into(), format!("λ = {} (relative), {} iterations", s.tv_lambda, s.tv_iterations)),
        ("tv-t".into(), format!("λ = {}, λ_t = {}", s.tv_lambda, s.tv_lambda_t)),
        ("wavelet".into(), format!("db4, 3 levels, λ = {}, {} iterations", s.wavelet_lambda, s.wavelet_iterations)),
        ("cg".into(), format!("{} iterations", s.cg_iterations)),
        ("bart-pics".into(), ctx.external.clone().map_or("not run (--baseline bart)".into(), |e| format!("{e}; best mean PSNR kept"))),
        ("intensity, clipping".into(), "auto (99.9th percentile of a CG image), x̂₀ clipped to ±1".into()),
        ("version".into(), format!("cinediff {}", env!("CARGO_PKG_VERSION"))),
    ]
}

fn dedup(mut v: Vec<String>, x: String) -> Vec<String> {
    if !v.contains(&x) {
        v.push(x);
    }
    v
}

/// For every operator × acceleration, the first condition with finished cells: every method's
/// images (from the stored cells) at the middle frame.
fn showcases(
    ctx: &OutputContext<'_>,
    done: &[&Planned],
    rows: &[FrameRow],
) -> anyhow::Result<Vec<Showcase>> {
    let mut seen: Vec<(OperatorKind, String)> = Vec::new();
    let mut out = Vec::new();
    for (k, c) in ctx.conds.iter().enumerate() {
        let key = (
            c.operator,
            cinediff::eval::acceleration_label(c.acceleration),
        );
        let cells: Vec<&&Planned> = done.iter().filter(|p| p.condition == k).collect();
        if seen.contains(&key) || cells.is_empty() {
            continue;
        }
        seen.push(key);
        let item = &ctx.items[c.item];
        let bundle = measure(item, c, ctx.measurement)?;
        let truth = bundle
            .truth()
            .ok_or_else(|| anyhow::anyhow!("{}: no truth", item.name))?;
        let shape = bundle.spec().shape;
        let complex = bundle.spec().complex;
        let display = |v: &[Complex32]| -> Vec<f32> {
            if complex {
                magnitude(v)
            } else {
                v.iter().map(|z| z.re).collect()
            }
        };
        let truth_display = display(&truth.values);
        let lo = if complex {
            0.0
        } else {
            truth_display.iter().copied().fold(f32::INFINITY, f32::min)
        };
        let hi = truth_display
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        let mut methods = Vec::new();
        for cell in cells {
            let dir = ctx.args.out.join("cells").join(&cell.id);
            let recon: Vec<Complex32> = match read_npy(&dir.join("recon.npy"))? {
                NpyArray::Complex { data, .. } => data,
                NpyArray::Real { data, .. } => {
                    data.into_iter().map(|v| Complex32::new(v, 0.0)).collect()
                }
                NpyArray::U8 { .. } => anyhow::bail!("{}: unexpected uint8", dir.display()),
            };
            if recon.len() != truth.values.len() {
                anyhow::bail!(
                    "{}/recon.npy: expected {} values, got {}",
                    dir.display(),
                    truth.values.len(),
                    recon.len()
                );
            }
            let std = match read_npy(&dir.join("std.npy")) {
                Ok(NpyArray::Real { data, .. }) if data.len() == recon.len() => Some(data),
                _ => None,
            };
            let error: Vec<f32> = recon
                .iter()
                .zip(&truth.values)
                .map(|(a, b)| {
                    if complex {
                        (a - b).norm()
                    } else {
                        (a.re - b.re).abs()
                    }
                })
                .collect();
            let psnrs: Vec<f64> = rows
                .iter()
                .filter(|r| {
                    r.item == item.name
                        && r.method == cell.entry.name
                        && r.operator == c.operator.name()
                        && r.acceleration == cinediff::eval::acceleration_label(c.acceleration)
                        && r.seed == c.seed
                })
                .map(|r| r.psnr)
                .collect();
            methods.push(ShowMethod {
                name: cell.entry.name.into(),
                image: display(&recon),
                error,
                std,
                psnr: psnrs.iter().sum::<f64>() / psnrs.len().max(1) as f64,
            });
        }
        out.push(Showcase {
            title: format!(
                "{} · {} · seed {}",
                item.name,
                if c.acceleration == 1.0 && !cinediff::eval::uses_acceleration(c.operator) {
                    c.operator.name().to_string()
                } else {
                    format!(
                        "{} {}×",
                        c.operator.name(),
                        cinediff::eval::acceleration_label(c.acceleration)
                    )
                },
                c.seed
            ),
            shape,
            truth: truth_display,
            window: (lo, hi),
            frame: shape[0] / 2,
            methods,
        });
    }
    Ok(out)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
