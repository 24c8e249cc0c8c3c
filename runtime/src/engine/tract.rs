//! tract engine: the pure-Rust CPU fallback (`tract-onnx`).
//!
//! The model is loaded, its input fixed to f32 of [`EngineOptions::input_shape`],
//! optimised and turned into a plan once; [`Session::run`] reuses one plan state. Tensors
//! cross the boundary as shape + slice, so tract's own `ndarray` version does not matter.
//! tract runs single-threaded. Operators tract does not know are reported as
//! [`Error::UnsupportedOp`](crate::Error::UnsupportedOp) naming the node and operator.

use std::path::Path;

#[cfg(feature = "tract")]
pub(crate) use imp::{open_with, profile_with};
#[cfg(not(feature = "tract"))]
pub(crate) use stub::{open_with, profile_with};

use super::{EngineOptions, Session};
use crate::error::Result;

/// The `tract-onnx` version this crate is built with (pinned `=` in the workspace).
pub const TRACT_VERSION: &str = "0.23.9";

/// Prepare `model` with tract for `opts.input_shape`.
pub fn open(model: &Path, opts: &EngineOptions) -> Result<Box<dyn Session>> {
    open_with(model, opts, Vec::new())
}

#[cfg(feature = "tract")]
mod imp {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use ndarray::{ArrayD, ArrayViewD, IxDyn};
    use tract_onnx::prelude::*;
    use tract_onnx::tract_hir::ops::unimpl::UnimplementedOp;

    use super::TRACT_VERSION;
    use crate::engine::{
        EngineOptions, EngineTrace, NodeEvent, ProfiledRuns, Session, SessionInfo,
        check_input_shape,
    };
    use crate::error::{Error, Result};

    fn engine_err(model: &Path, reason: impl AsRef<str>) -> Error {
        let reason = reason
            .as_ref()
            .split(['\n', '\r'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Error::Engine {
            engine: "tract",
            path: model.to_path_buf(),
            reason,
        }
    }

    /// The whole error chain on one line.
    fn chain(e: &TractError) -> String {
        format!("{e:#}")
    }

    /// Run `f`, turning a panic inside tract into an engine error.
    fn guarded<T>(model: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(engine_err(model, format!("tract panicked: {msg}")))
        })
    }

    /// [`super::open`], with fallback lines already recorded by the caller.
    pub(crate) fn open_with(
        model: &Path,
        opts: &EngineOptions,
        fallbacks: Vec<String>,
    ) -> Result<Box<dyn Session>> {
        std::fs::metadata(model).map_err(|e| Error::io(model, e))?;
        let state = guarded(model, || plan(model, opts))?;
        Ok(Box::new(TractSession {
            state,
            path: model.to_path_buf(),
            info: SessionInfo {
                engine: "tract",
                provider: "tract-cpu".into(),
                version: TRACT_VERSION.into(),
                fallbacks,
                input_shape: opts.input_shape.clone(),
            },
        }))
    }

    /// Run `warmup` untimed then `runs` timed inferences on the optimised plan, timing
    /// every node (sources and constants left out) with a wall clock around its eval.
    pub(crate) fn profile_with(
        model: &Path,
        opts: &EngineOptions,
        fallbacks: Vec<String>,
        input: ArrayViewD<'_, f32>,
        warmup: usize,
        runs: usize,
    ) -> Result<ProfiledRuns> {
        std::fs::metadata(model).map_err(|e| Error::io(model, e))?;
        crate::engine::check_memory(model, &opts.input_shape).map_err(|e| e.at(model))?;
        let mut state = guarded(model, || plan(model, opts))?;
        let info = SessionInfo {
            engine: "tract",
            provider: "tract-cpu".into(),
            version: TRACT_VERSION.into(),
            fallbacks,
            input_shape: opts.input_shape.clone(),
        };
        check_input_shape(&info, &input)?;
        let tensor = to_tensor(model, &input)?;
        let err = |e: TractError| engine_err(model, chain(&e));
        let mut events = Vec::new();
        let mut run_ms = Vec::with_capacity(runs);
        let mut run_start_us = Vec::with_capacity(runs);
        let mut origin: Option<Instant> = None;
        // (node id, start, duration) of one run; reused.
        let mut times: Vec<(usize, Instant, Duration)> = Vec::new();
        for i in 0..warmup + runs {
            times.clear();
            let t0 = Instant::now();
            let times_ref = &mut times;
            let st = &mut state;
            let input = tensor.clone();
            guarded(model, || {
                st.run_plan_with_eval(tvec![input.into()], |ctx, op_state, node, inputs| {
                    let start = Instant::now();
                    let out = tract_onnx::tract_core::plan::eval(ctx, op_state, node, inputs);
                    times_ref.push((node.id, start, start.elapsed()));
                    out
                })
                .map_err(err)
            })?;
            let wall = t0.elapsed();
            if i < warmup {
                continue;
            }
            let origin = *origin.get_or_insert(t0);
            let run = i - warmup;
            run_ms.push(wall.as_secs_f64() * 1e3);
            run_start_us.push(t0.duration_since(origin).as_secs_f64() * 1e6);
            let graph = state.model();
            for &(id, start, dur) in &times {
                let node = graph.node(id);
                let op = node.op.name();
                if matches!(op.as_ref(), "Source" | "Const") {
                    continue;
                }
                events.push(NodeEvent {
                    run,
                    name: node.name.clone(),
                    op: op.into_owned(),
                    start_us: start.duration_since(origin).as_secs_f64() * 1e6,
                    dur_us: dur.as_secs_f64() * 1e6,
                    provider: None,
                    precision: None,
                });
            }
        }
        Ok(ProfiledRuns {
            info,
            run_ms,
            run_start_us,
            trace: EngineTrace::Events(events),
        })
    }

    /// An ndarray view as a tract tensor (shape + slice, whatever tract's ndarray is).
    fn to_tensor(path: &Path, input: &ArrayViewD<'_, f32>) -> Result<Tensor> {
        let input = input.as_standard_layout();
        let data = input
            .as_slice()
            .ok_or_else(|| engine_err(path, "input is not contiguous"))?;
        Tensor::from_shape(input.shape(), data).map_err(|e| engine_err(path, chain(&e)))
    }

    fn plan(model: &Path, opts: &EngineOptions) -> Result<TypedSimpleState> {
        let mut m = tract_onnx::onnx()
            .model_for_path(model)
            .map_err(|e| engine_err(model, chain(&e)))?;
        if let Some(node) = m
            .nodes()
            .iter()
            .find(|n| n.op_as::<UnimplementedOp>().is_some())
        {
            // The op's name is "Unimplemented(<op_type>)".
            let name = node.op.name();
            let op = name
                .strip_prefix("Unimplemented(")
                .and_then(|s| s.strip_suffix(')'))
                .unwrap_or(&name)
                .to_string();
            return Err(Error::UnsupportedOp {
                path: model.to_path_buf(),
                node: node.name.clone(),
                op,
                detail: Some("not implemented by tract".into()),
            });
        }
        if m.inputs.len() != 1 {
            return Err(engine_err(
                model,
                format!(
                    "the model has {} inputs; edgebench runs single-input models",
                    m.inputs.len()
                ),
            ));
        }
        let fact = InferenceFact::dt_shape(f32::datum_type(), opts.input_shape.as_slice());
        m.set_input_fact(0, fact)
            .map_err(|e| engine_err(model, chain(&e)))?;
        let optimized = m
            .into_optimized()
            .map_err(|e| engine_err(model, chain(&e)))?;
        let runnable = optimized
            .into_runnable()
            .map_err(|e| engine_err(model, chain(&e)))?;
        TypedSimpleState::new(&runnable).map_err(|e| engine_err(model, chain(&e)))
    }

    struct TractSession {
        state: TypedSimpleState,
        path: PathBuf,
        info: SessionInfo,
    }

    impl Session for TractSession {
        fn run(&mut self, input: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
            self.run_all(input)?
                .into_iter()
                .next()
                .ok_or_else(|| engine_err(&self.path, "the model produced no output"))
        }

        fn run_all(&mut self, input: ArrayViewD<'_, f32>) -> Result<Vec<ArrayD<f32>>> {
            check_input_shape(&self.info, &input)?;
            let path = &self.path;
            let err = |e: TractError| engine_err(path, chain(&e));
            let tensor = to_tensor(path, &input)?;
            let state = &mut self.state;
            let outputs = guarded(path, || state.run(tvec![tensor.into()]).map_err(err))?;
            outputs
                .iter()
                .map(|o| {
                    let t = o.cast_to::<f32>().map_err(err)?;
                    let values = t
                        .try_as_plain_ram()
                        .and_then(|v| v.as_slice::<f32>())
                        .map_err(err)?;
                    ArrayD::from_shape_vec(IxDyn(t.shape()), values.to_vec())
                        .map_err(|e| engine_err(path, format!("output shape: {e}")))
                })
                .collect()
        }

        fn info(&self) -> &SessionInfo {
            &self.info
        }
    }
}

#[cfg(not(feature = "tract"))]
mod stub {
    use std::path::Path;

    use ndarray::ArrayViewD;

    use crate::engine::{EngineOptions, ProfiledRuns, Session};
    use crate::error::{Error, Result};

    /// Always [`Error::NotCompiledIn`]: this build has no `tract` feature.
    pub(crate) fn profile_with(
        _model: &Path,
        _opts: &EngineOptions,
        _fallbacks: Vec<String>,
        _input: ArrayViewD<'_, f32>,
        _warmup: usize,
        _runs: usize,
    ) -> Result<ProfiledRuns> {
        Err(Error::NotCompiledIn { engine: "tract" })
    }

    /// Always [`Error::NotCompiledIn`]: this build has no `tract` feature.
    pub(crate) fn open_with(
        _model: &Path,
        _opts: &EngineOptions,
        _fallbacks: Vec<String>,
    ) -> Result<Box<dyn Session>> {
        Err(Error::NotCompiledIn { engine: "tract" })
    }
}

#[cfg(test)]
mod tests {
    /// [`super::TRACT_VERSION`] must follow the pin in the workspace manifest.
    #[test]
    fn tract_version_matches_the_pin() {
        let manifest = include_str!("../../../Cargo.toml");
        let pin = format!("tract-onnx = \"={}\"", super::TRACT_VERSION);
        assert!(manifest.contains(&pin), "workspace Cargo.toml lacks {pin}");
    }
}
