//! The search's steps in order: spec files, measuring, probing, the schedule, the
//! rungs of successive halving, the end.

use std::time::Instant;

use super::finish::{finish, nothing_fits, read_final_report};
use super::measure::{budget_line, measured_line};
use super::schedule::{self, Score};
use super::state::ArchState;
use super::steps::{final_reserve, is_divergence, probe, rung_cost, train_rung};
use super::{Halt, Measure, Outcome, Search, Step, report};
use crate::error::Error;
use crate::train::fit::Data;

pub(super) fn run(
    s: &mut Search<'_>,
    train: &Data,
    val: &Data,
    measure: &mut dyn Measure,
) -> Step<Outcome> {
    let cfg = s.cfg;
    s.obs.say(&format!("space: {}", cfg.space.describe()));
    s.obs.say(&format!("target: {}", budget_line(&cfg.budget)));
    // 1. Spec files and the states of the archs (new ones only).
    let specs = cfg.out.join("specs");
    std::fs::create_dir_all(&specs).map_err(|e| Error::io(&specs, e))?;
    for a in &s.arches {
        let rel = format!("specs/{}.toml", a.name);
        let path = cfg.out.join(&rel);
        crate::fsutil::write_atomic(&path, a.spec.to_toml().as_bytes())?;
        if s.st.arch(&a.name).is_none() {
            s.st.arches.push(ArchState {
                name: a.name.clone(),
                width: a.width,
                depth: a.depth,
                size: a.size,
                spec_file: rel,
                measured: None,
                measure_s: None,
                train_plan: None,
                step_s: None,
                eval_s: None,
                dropped: None,
                rungs: Vec::new(),
            });
        }
    }
    // 2. Measure every arch in every precision.
    let n = s.arches.len();
    for k in 0..n {
        let a = s.arches[k].clone();
        let i = s.idx(&a.name);
        if s.st.arches[i].measured.is_some() {
            continue;
        }
        s.obs.say(&format!(
            "measuring {} ({}/{n}): {}",
            a.name,
            k + 1,
            cfg.space
                .precisions
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let t0 = Instant::now();
        let path = cfg.out.join(&s.st.arches[i].spec_file);
        let m = measure
            .measure(&a.name, &path, &cfg.space.precisions, &cfg.budget)
            .map_err(|e| e.context(format!("measuring {}", a.name)))?;
        for c in &m {
            let name = format!("{}{}", a.name, c.precision.suffix());
            let fig = measured_line(c);
            if c.fits {
                s.obs.say(&format!("  {name}: {fig}: fits"));
            } else {
                s.obs
                    .say(&format!("  {name}: {fig}: over ({})", c.over.join("; ")));
            }
        }
        let a_st = &mut s.st.arches[i];
        a_st.measure_s = Some(t0.elapsed().as_secs_f64());
        if !m.iter().any(|c| c.fits) {
            a_st.dropped = Some(format!(
                "over the budget in every precision ({})",
                m.iter()
                    .map(|c| format!("{}: {}", c.precision, c.over.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        a_st.measured = Some(m);
        s.save()?;
    }
    if s.st.arches.iter().all(|a| a.dropped.is_some()) {
        return Err(Halt::Failed(nothing_fits(&s.st, &cfg.budget)));
    }
    // 3. Training plan and step time of every arch that fits.
    for k in 0..n {
        let a = s.arches[k].clone();
        let i = s.idx(&a.name);
        let a_st = &s.st.arches[i];
        if a_st.dropped.is_some() || a_st.step_s.is_some() {
            continue;
        }
        match probe(cfg, &a, val.len()) {
            Ok((plan, step_s, eval_s)) => {
                s.obs.say(&format!(
                    "{}: training step {} ({} × micro-batch {}), {:.3} s per step, validation {:.2} s",
                    a.name,
                    crate::units::bytes(plan.bytes),
                    plan.accumulation_steps,
                    plan.micro_batch,
                    step_s,
                    eval_s
                ));
                let a_st = &mut s.st.arches[i];
                a_st.train_plan = Some(plan);
                a_st.step_s = Some(step_s);
                a_st.eval_s = Some(eval_s);
            }
            Err(e) => {
                s.obs.say(&format!("{}: not trained: {e}", a.name));
                s.st.arches[i].dropped = Some(format!("training does not fit: {e}"));
            }
        }
        s.save()?;
    }
    if s.st.arches.iter().all(|a| a.dropped.is_some()) {
        return Err(Halt::Failed(Error::Train(format!(
            "no candidate can train within target {}'s memory ({}): {}",
            cfg.budget.name,
            cfg.budget
                .memory_bytes
                .map_or("no budget".into(), crate::units::bytes),
            s.st.arches
                .iter()
                .filter_map(|a| a.dropped.as_deref())
                .next()
                .unwrap_or("")
        ))));
    }
    // 4. The schedule.
    if s.st.schedule.is_none() {
        let costs: Vec<(f64, f64)> =
            s.st.arches
                .iter()
                .filter(|a| a.dropped.is_none())
                .map(|a| (a.step_s.unwrap_or(0.0), a.eval_s.unwrap_or(0.0)))
                .collect();
        let sched = match cfg.rung_images {
            Some(images) => schedule::schedule(
                &costs,
                images.div_ceil(cfg.batch as u64),
                format!("--rung-images {images}"),
            ),
            None => {
                let reserve = final_reserve(&s.st);
                let left = cfg.time_s - s.elapsed();
                let available = left * 0.9 - reserve;
                match schedule::fit_steps(&costs, available) {
                    Ok(s0) => schedule::schedule(
                        &costs,
                        s0,
                        format!("from --time: {:.0} s left", left.max(0.0)),
                    ),
                    Err(need) => {
                        let at_least = (s.elapsed() + (need + reserve) / 0.9).ceil();
                        return Err(Halt::Failed(Error::Invalid(format!(
                            "--time {} is too short: after measuring ({:.0} s), one training step of each of the {} candidates with their validation needs about {:.0} s more; give at least --time {}",
                            crate::units::duration(cfg.time_s),
                            s.elapsed(),
                            costs.len(),
                            need + reserve,
                            crate::units::duration(at_least)
                        ))));
                    }
                }
            }
        };
        s.obs.say(&format!(
            "schedule ({}): {} rung(s), candidates {:?}, optimizer steps {:?} (batch {}), about {:.0} s of training",
            sched.basis,
            sched.counts.len(),
            sched.counts,
            sched.steps,
            cfg.batch,
            sched.estimated_s
        ));
        s.st.schedule = Some(sched);
        s.save()?;
    }
    let sched = s.st.schedule.clone().expect("set above");
    // 5. The rungs.
    let mut ended = String::from("one candidate left");
    for r in 0..sched.counts.len() {
        if r > 0 {
            halve(s, r, sched.counts[r])?;
        }
        let names: Vec<String> =
            s.st.arches
                .iter()
                .filter(|a| a.dropped.is_none() && a.rungs.len() >= r)
                .map(|a| a.name.clone())
                .collect();
        if r > 0
            && names
                .iter()
                .all(|n| s.st.arch(n).is_some_and(|a| a.rungs.len() == r))
        {
            // Not started: does it fit the time left?
            let need: f64 = names
                .iter()
                .filter_map(|n| s.st.arch(n))
                .map(|a| rung_cost(a, sched.steps[r] - sched.steps[r - 1]))
                .sum();
            let left = cfg.time_s - s.elapsed();
            if cfg.rung_images.is_none() && need > left {
                ended = format!(
                    "the time budget: rung {} would take about {need:.0} s, {:.0} s were left",
                    r + 1,
                    left.max(0.0)
                );
                s.obs.say(&format!("stopping: {ended}"));
                break;
            }
        }
        s.obs.say(&format!(
            "rung {}/{}: {} candidates to {} optimizer steps ({} images) each",
            r + 1,
            sched.counts.len(),
            names.len(),
            sched.steps[r],
            sched.steps[r] * cfg.batch as u64
        ));
        for name in names {
            let i = s.idx(&name);
            if s.st.arches[i].rungs.len() > r || s.st.arches[i].dropped.is_some() {
                continue;
            }
            let a = s.arch(&name);
            match train_rung(s, &a, r, sched.steps[r], train, val) {
                Ok(res) => {
                    s.obs.say(&format!(
                        "  {name}: held-out accuracy {:.2}%, loss {:.4} ({} images, {:.1} s)",
                        100.0 * res.val_acc,
                        res.val_loss,
                        res.images,
                        res.seconds
                    ));
                    s.st.arches[i].rungs.push(res);
                }
                Err(e) if is_divergence(&e) => {
                    s.obs.say(&format!("  {name}: dropped: {e}"));
                    s.st.arches[i].dropped = Some(format!("rung {}: {e}", r + 1));
                }
                Err(e) => return Err(Halt::Failed(e.context(format!("training {name}")))),
            }
            s.save()?;
        }
    }
    // 6. The winner: the best of those that trained furthest.
    let deepest =
        s.st.arches
            .iter()
            .filter(|a| a.dropped.is_none())
            .map(|a| a.rungs.len())
            .max()
            .unwrap_or(0);
    let mut finalists: Vec<Score> =
        s.st.arches
            .iter()
            .filter(|a| a.dropped.is_none() && a.rungs.len() == deepest && deepest > 0)
            .map(score)
            .collect();
    finalists.sort_by(schedule::better);
    let Some(win) = finalists.first().cloned() else {
        return Err(Halt::Failed(Error::Train(
            "every candidate was dropped while training (see the lines above)".into(),
        )));
    };
    if s.st.done.is_none() {
        let done = finish(s, &win.name, &ended, measure)?;
        s.st.done = Some(done);
        s.save()?;
    }
    let rep = report::ShrinkReport::new(cfg, &s.st, s.elapsed());
    let compared = read_final_report(&cfg.out);
    Ok(Outcome::Done(Box::new(rep), Box::new(compared)))
}

/// Drops the worse part of the arches that finished rung `r − 1`, so that `keep` go on.
pub(super) fn halve(s: &mut Search<'_>, r: usize, keep: usize) -> Step<()> {
    let mut ranked: Vec<Score> =
        s.st.arches
            .iter()
            .filter(|a| a.dropped.is_none() && a.rungs.len() >= r)
            .map(|a| score_at(a, r - 1))
            .collect();
    if ranked.len() <= keep {
        return Ok(());
    }
    ranked.sort_by(schedule::better);
    let n = ranked.len();
    for (place, sc) in ranked.iter().enumerate().skip(keep) {
        let i = s.idx(&sc.name);
        s.st.arches[i].dropped = Some(format!(
            "rung {}: ranked {} of {n} (held-out accuracy {:.2}%)",
            r,
            place + 1,
            100.0 * sc.val_acc
        ));
    }
    let kept: Vec<&str> = ranked[..keep].iter().map(|s| s.name.as_str()).collect();
    s.obs.say(&format!("rung {r} kept {}", kept.join(", ")));
    s.save()
}

pub(super) fn score(a: &ArchState) -> Score {
    score_at(a, a.rungs.len() - 1)
}

pub(super) fn score_at(a: &ArchState, r: usize) -> Score {
    let res = &a.rungs[r];
    Score {
        name: a.name.clone(),
        val_acc: res.val_acc,
        val_loss: res.val_loss,
        latency_ms: a.best_latency_ms(),
    }
}
