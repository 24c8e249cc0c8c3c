//! The micro-batch for a memory budget: [`fit`] finds the largest micro-batch whose
//! [`plan`] fits and balances it over the accumulation steps; [`split`] cuts an
//! effective batch into micro-batches with or without a budget.

use super::{MemoryPlan, Trainable, plan};
use crate::error::{Error, Result};
use crate::model::spec::{InputShape, Spec};
use crate::units;

/// The micro-batch and accumulation steps that reach an effective batch within a budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// Images per micro-batch (balanced: `⌈effective / steps⌉`).
    pub micro_batch: usize,
    /// The largest micro-batch that fits the budget (≥ `micro_batch`).
    pub max_micro_batch: usize,
    /// Micro-batches accumulated per optimizer step.
    pub accumulation_steps: usize,
    /// Images in the last micro-batch: `micro_batch` when it divides the effective batch,
    /// smaller otherwise.
    pub last_micro_batch: usize,
    /// The effective batch (images per optimizer step).
    pub effective_batch: usize,
    /// The budget, in bytes.
    pub budget: u64,
    /// The plan at `micro_batch`.
    pub plan: MemoryPlan,
}

impl Fit {
    /// Whether the last micro-batch is smaller than the others.
    pub fn uneven(&self) -> bool {
        self.last_micro_batch != self.micro_batch
    }
}

/// Largest micro-batch in `1..=max` whose plan fits `budget`, with its plan.
fn largest_fitting(
    spec: &Spec,
    input: InputShape,
    budget: u64,
    max: usize,
    factor: usize,
    trainable: Trainable,
) -> Result<Option<(usize, MemoryPlan)>> {
    let one = plan(spec, input, 1, factor, trainable)?;
    if one.total() > budget {
        return Ok(None);
    }
    // Plans grow monotonically with the micro-batch: binary search for the last fit.
    let (mut lo, mut hi) = (1usize, max.max(1));
    let mut best = one;
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        let p = plan(spec, input, mid, factor, trainable)?;
        if p.total() <= budget {
            lo = mid;
            best = p;
        } else {
            hi = mid - 1;
        }
    }
    Ok(Some((lo, best)))
}

/// The largest micro-batch ≤ `effective_batch` that fits `budget_bytes`, balanced over
/// the accumulation steps; an [`Error::Invalid`] naming what would fit when nothing does.
pub fn fit(
    spec: &Spec,
    input: InputShape,
    budget_bytes: u64,
    effective_batch: usize,
    optimizer_state_factor: usize,
    trainable: Trainable,
) -> Result<Fit> {
    if effective_batch == 0 {
        return Err(Error::Invalid("the batch must be at least 1".into()));
    }
    let found = largest_fitting(
        spec,
        input,
        budget_bytes,
        effective_batch,
        optimizer_state_factor,
        trainable,
    )?;
    let Some((max_micro, _)) = found else {
        return Err(nothing_fits(
            spec,
            input,
            budget_bytes,
            optimizer_state_factor,
            trainable,
        ));
    };
    let steps = effective_batch.div_ceil(max_micro);
    let micro = effective_batch.div_ceil(steps);
    let last_micro = effective_batch - micro * (steps - 1);
    let plan = plan(spec, input, micro, optimizer_state_factor, trainable)?;
    Ok(Fit {
        micro_batch: micro,
        max_micro_batch: max_micro,
        accumulation_steps: steps,
        last_micro_batch: last_micro,
        effective_batch,
        budget: budget_bytes,
        plan,
    })
}

/// How an effective batch is cut into micro-batches for one optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Images per optimizer step.
    pub effective: usize,
    /// Images per micro-batch.
    pub micro: usize,
    /// Micro-batches accumulated per optimizer step.
    pub steps: usize,
    /// Images in the last micro-batch of each step (`micro` when it divides `effective`).
    pub last: usize,
    /// With a budget: the largest micro-batch that fits it ([`Fit::max_micro_batch`]).
    pub max_micro: Option<usize>,
}

/// The split of `effective` images per step: with `budget_bytes`, [`fit`]'s balanced
/// micro-batch, or the requested `micro` capped at the largest that fits (then the last
/// micro-batch takes the rest); without a budget, `micro` balanced over
/// `⌈effective / micro⌉` steps; with neither, the whole batch at once.
pub fn split(
    spec: &Spec,
    input: InputShape,
    effective: usize,
    micro: Option<usize>,
    budget_bytes: Option<u64>,
    optimizer_state_factor: usize,
    trainable: Trainable,
) -> Result<Split> {
    if effective == 0 || micro == Some(0) {
        return Err(Error::Invalid(
            "the batch and the micro-batch must be at least 1".into(),
        ));
    }
    let explicit = micro.map(|m| m.min(effective));
    let with_last = |micro: usize, steps: usize, max_micro| Split {
        effective,
        micro,
        steps,
        last: effective - micro * (steps - 1),
        max_micro,
    };
    Ok(match (budget_bytes, explicit) {
        (Some(budget), _) => {
            let fit = fit(
                spec,
                input,
                budget,
                effective,
                optimizer_state_factor,
                trainable,
            )?;
            let micro = explicit.map_or(fit.micro_batch, |m| m.min(fit.max_micro_batch));
            with_last(micro, effective.div_ceil(micro), Some(fit.max_micro_batch))
        }
        (None, Some(m)) => {
            let steps = effective.div_ceil(m);
            with_last(effective.div_ceil(steps), steps, None)
        }
        (None, None) => with_last(effective, 1, None),
    })
}

/// The error for a budget that not even one image fits, with the alternatives that do.
fn nothing_fits(
    spec: &Spec,
    input: InputShape,
    budget: u64,
    factor: usize,
    trainable: Trainable,
) -> Error {
    let need = plan(spec, input, 1, factor, trainable)
        .map(|p| units::bytes(p.total()))
        .unwrap_or_else(|e| e.to_string());
    let mut msg = format!(
        "{} at {input} needs {need} to train one image (trainable: {trainable}, optimizer \
         state ×{factor}), over the {} budget",
        spec.name,
        units::bytes(budget)
    );
    let mut options = Vec::new();
    let describe = |what: String, input: InputShape, f: usize, t: Trainable| match largest_fitting(
        spec,
        input,
        budget,
        1 << 16,
        f,
        t,
    ) {
        Ok(Some((m, p))) => {
            let one = plan(spec, input, 1, f, t).map(|p| p.total()).unwrap_or(0);
            Some(format!(
                "{what}: {} at micro-batch 1, up to micro-batch {m} ({})",
                units::bytes(one),
                units::bytes(p.total())
            ))
        }
        _ => None,
    };
    // A smaller input: halve H×W until one image fits (or the layers stop chaining).
    let mut smaller = input;
    for _ in 0..16 {
        smaller.height /= 2;
        smaller.width /= 2;
        if smaller.height == 0 || smaller.width == 0 || spec.plan(smaller).is_err() {
            break;
        }
        if let Some(s) = describe(format!("input {smaller}"), smaller, factor, trainable) {
            options.push(s);
            break;
        }
    }
    // A partial update: the most trainable `last:N` that fits, then bias-only.
    let layers = spec
        .plan(input)
        .map(|p| p.iter().filter(|l| l.params > 0).count())
        .unwrap_or(0);
    let current = match trainable {
        Trainable::All => layers,
        Trainable::LastLayers(k) => k,
        Trainable::BiasOnly => 0,
    };
    for k in (1..current.min(layers + 1)).rev() {
        let t = Trainable::LastLayers(k);
        if let Some(s) = describe(format!("--train-layers {t}"), input, factor, t) {
            options.push(s);
            break;
        }
    }
    if trainable != Trainable::BiasOnly {
        let t = Trainable::BiasOnly;
        if let Some(s) = describe("--bias-only".into(), input, factor, t) {
            options.push(s);
        }
    }
    let plain_sgd = (factor > 0)
        .then(|| describe("plain SGD (no optimizer state)".into(), input, 0, trainable))
        .flatten();
    options.extend(plain_sgd);
    if options.is_empty() {
        msg.push_str(
            "; nothing smaller fits either (tried a smaller input, a partial update \
             (last:N, bias-only) and plain SGD): raise the budget",
        );
    } else {
        msg.push_str("; what would fit: ");
        msg.push_str(&options.join("; "));
    }
    Error::Invalid(msg)
}
