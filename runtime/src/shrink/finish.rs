//! The end of a search: the winner's weights exported, its precisions compared with the
//! base model on the held-out data, the most accurate chosen; and the error when no
//! candidate fits at all.

use std::path::Path;

use super::measure::{budget_line, measured_line};
use super::space::{Arch, Precision};
use super::state::{ArchState, Finished, State};
use super::steps::setup;
use super::{Measure, Search, ShrinkConfig, Step};
use crate::error::{Error, Result};
use crate::report::schema::{Report, TargetBudget};
use crate::train::fit;

/// Exports the winner, compares its fitting precisions with the base on the held-out
/// data, and picks the most accurate.
pub(super) fn finish(
    s: &mut Search<'_>,
    winner: &str,
    ended: &str,
    measure: &mut dyn Measure,
) -> Step<Finished> {
    let cfg = s.cfg;
    let i = s.idx(winner);
    let a = s.arch(winner);
    let fp32_rel = format!("{winner}.onnx");
    export_trained(cfg, &a, &s.st.arches[i], &cfg.out.join(&fp32_rel))?;
    s.obs.say(&format!(
        "chosen arch {winner}: weights in {}",
        cfg.out.join(&fp32_rel).display()
    ));
    let precisions: Vec<Precision> = s.st.arches[i].fitting().map(|m| m.precision).collect();
    let mut models: Vec<String> = precisions
        .iter()
        .map(|p| format!("{}{}", cfg.out.join(&fp32_rel).display(), p.suffix()))
        .collect();
    // The base model, trained in this search where it was.
    let base_rel = base_model(s, winner)?;
    if let Some(b) = &base_rel {
        models.push(cfg.out.join(b).display().to_string());
    }
    s.obs.say(&format!(
        "final comparison on the held-out data: {}",
        models.join(", ")
    ));
    let (top1, report) = measure.compare(&models, &cfg.val, &cfg.budget)?;
    if let Some(rep) = &report {
        let text = serde_json::to_string_pretty(rep).map_err(|e| Error::json("the report", e))?;
        crate::fsutil::write_atomic(&cfg.out.join(FINAL_REPORT), text.as_bytes())?;
    }
    let p90 = |p: Precision| {
        s.st.arches[i]
            .fitting()
            .find(|m| m.precision == p)
            .and_then(|m| m.p90_ms)
            .unwrap_or(f64::INFINITY)
    };
    let pairs: Vec<(Precision, Option<f64>)> = precisions
        .iter()
        .copied()
        .zip(top1.iter().copied())
        .collect();
    let chosen = pairs
        .iter()
        .max_by(|x, y| {
            x.1.unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&y.1.unwrap_or(f64::NEG_INFINITY))
                .then(p90(y.0).total_cmp(&p90(x.0)))
        })
        .map(|x| x.0)
        .unwrap_or(Precision::Fp32);
    let model_rel = match chosen {
        Precision::Fp32 => fp32_rel.clone(),
        p => {
            let rel = format!("{winner}-{p}.onnx");
            let fp32 = crate::model::prepare(
                &cfg.out.join(&fp32_rel).display().to_string(),
                &Default::default(),
            )?;
            let out = cfg.out.join(&rel);
            if p == Precision::Int8 {
                crate::quant::variant::quantize_default(&fp32, &cfg.train, &out)?;
            } else {
                crate::quant::fp16::write(&fp32, &out)?;
            }
            rel
        }
    };
    Ok(Finished {
        arch: winner.to_string(),
        precision: chosen,
        model_file: model_rel,
        top1: pairs,
        ended: ended.to_string(),
    })
}

/// The final comparison's report, in the output folder.
pub const FINAL_REPORT: &str = "final-compare.json";

pub(super) fn read_final_report(dir: &Path) -> Option<Report> {
    let text = std::fs::read_to_string(dir.join(FINAL_REPORT)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The base model for the final comparison: width 1 at the base's own size (else the
/// largest size searched), exported from its last checkpoint when it trained in the
/// search and is not the winner; `None` otherwise (said why).
pub(super) fn base_model(s: &mut Search<'_>, winner: &str) -> Step<Option<String>> {
    let cfg = s.cfg;
    let side = cfg.base.input.height;
    let pick = s
        .arches
        .iter()
        .filter(|a| a.width == 1.0 && a.depth == 0)
        .max_by_key(|a| (a.size == side, a.size))
        .cloned();
    let Some(a) = pick else {
        s.obs
            .say("the base (width 1) is not in the space: no base in the final comparison");
        return Ok(None);
    };
    if a.name == winner {
        s.obs.say(&format!(
            "the chosen arch is the base at width 1 ({winner}): no other base to compare with"
        ));
        return Ok(None);
    }
    let i = s.idx(&a.name);
    if s.st.arches[i].rungs.is_empty() {
        s.obs.say(&format!(
            "{} did not train in the search ({}): no base in the final comparison",
            a.name,
            s.st.arches[i].dropped.as_deref().unwrap_or("not reached")
        ));
        return Ok(None);
    }
    let rel = format!("base-{}.onnx", a.name);
    let st = s.st.arches[i].clone();
    export_trained(cfg, &a, &st, &cfg.out.join(&rel))?;
    Ok(Some(rel))
}

/// Restores `a`'s last checkpoint and writes its weights as ONNX to `path`.
pub(super) fn export_trained(
    cfg: &ShrinkConfig,
    a: &Arch,
    st: &ArchState,
    path: &Path,
) -> Result<()> {
    let last = st
        .rungs
        .last()
        .ok_or_else(|| Error::Train(format!("{} has not trained", a.name)))?;
    let su = setup(cfg, a)?;
    let mut t = su.trainer(cfg.threads, cfg.seed, None)?;
    fit::resume(&mut t, &cfg.out.join(&last.checkpoint), cfg.seed)?;
    fit::export::export(&t, &su.spec, su.input, path, None)?;
    Ok(())
}

/// The error when no candidate fits: the binding budget, and what would fit.
pub(super) fn nothing_fits(st: &State, b: &TargetBudget) -> Error {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for m in st.arches.iter().flat_map(|a| a.measured.iter().flatten()) {
        for o in &m.over {
            let key = o
                .split(' ')
                .take_while(|w| !w.starts_with(|c: char| c.is_ascii_digit() || c == '?'))
                .collect::<Vec<_>>()
                .join(" ");
            match counts.iter_mut().find(|(k, _)| *k == key) {
                Some(c) => c.1 += 1,
                None => counts.push((key, 1)),
            }
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let binding = counts.first().map_or("?".to_string(), |(k, n)| {
        format!("{k} ({n} candidates over it)")
    });
    let best = st
        .arches
        .iter()
        .flat_map(|a| {
            a.measured
                .iter()
                .flatten()
                .map(move |m| (format!("{}{}", a.name, m.precision.suffix()), m))
        })
        .min_by(|x, y| {
            x.1.p90_ms
                .unwrap_or(f64::INFINITY)
                .total_cmp(&y.1.p90_ms.unwrap_or(f64::INFINITY))
        });
    let closest = best.map_or(String::new(), |(n, m)| {
        format!("; the fastest, {n}, measured {}", measured_line(m))
    });
    Error::Train(format!(
        "no candidate fits target {} ({}): the binding budget is {binding}{closest}; narrow the search to smaller widths or sizes (--widths, --sizes), add int8 (--precisions), or pick a larger target",
        b.name,
        budget_line(b)
    ))
}
