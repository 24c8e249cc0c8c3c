//! A session on one model: opened on the providers asked for, checked for one float32
//! input, run on borrowed input views; and runs with ONNX Runtime's profiler on.

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, ArrayViewD};
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::value::TensorRef;

use super::library::{Runtime, runtime};
use super::one_line;
use super::providers::commit;
use crate::engine::{
    EngineOptions, EngineTrace, ProfiledRuns, Session, SessionInfo, check_input_shape,
};
use crate::error::{Error, Result};

/// A fresh builder with the session-wide options (threads, optimisation level, and
/// ONNX Runtime's profiler writing to `<profile>_<date>.json` when given).
pub(super) fn builder(
    rt: &Runtime,
    opts: &EngineOptions,
    model: &Path,
    profile: Option<&Path>,
) -> Result<SessionBuilder> {
    let eng = |e: ort::Error| engine_err(model, &e.to_string());
    let mut b = ort::session::Session::builder(&rt.env).map_err(eng)?;
    if let Some(prefix) = profile {
        b = b
            .with_profiling(prefix)
            .map_err(|e| engine_err(model, &e.to_string()))?;
    }
    if let Some(n) = opts.settings.threads {
        b = b
            .with_intra_threads(n)
            .map_err(|e| engine_err(model, &e.to_string()))?;
    }
    b.with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| engine_err(model, &e.to_string()))
}

pub(super) fn engine_err(model: &Path, reason: &str) -> Error {
    Error::Engine {
        engine: "ort",
        path: model.to_path_buf(),
        reason: one_line(reason),
    }
}

/// Prepare `model` with ONNX Runtime, execution providers in `opts.settings.providers` order.
pub fn open(model: &Path, opts: &EngineOptions) -> Result<Box<dyn Session>> {
    Ok(Box::new(open_session(model, opts, None)?))
}

/// Run `warmup` untimed then `runs` timed inferences with ONNX Runtime's profiler on,
/// and return the profile JSON it wrote (the file, in a temporary folder, is deleted).
pub(crate) fn profile_runs(
    model: &Path,
    opts: &EngineOptions,
    input: ArrayViewD<'_, f32>,
    warmup: usize,
    runs: usize,
) -> Result<ProfiledRuns> {
    crate::engine::check_memory(model, &opts.input_shape).map_err(|e| e.at(model))?;
    // Declared before the session, so dropped after it: a session that ends on an
    // error may still write its profile there, and the folder goes with it.
    let dir = tempfile::Builder::new()
        .prefix("edgebench-ort-profile-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let prefix = dir.path().join("ort");
    let mut s = open_session(model, opts, Some(&prefix))?;
    let mut run_ms = Vec::with_capacity(runs);
    let mut run_start_us = Vec::with_capacity(runs);
    let mut origin = None;
    for i in 0..warmup + runs {
        let t0 = std::time::Instant::now();
        s.run(input.view())?;
        let wall = t0.elapsed();
        if i >= warmup {
            let origin = *origin.get_or_insert(t0);
            run_ms.push(wall.as_secs_f64() * 1e3);
            run_start_us.push(t0.duration_since(origin).as_secs_f64() * 1e6);
        }
    }
    let file = s
        .session
        .end_profiling()
        .map_err(|e| engine_err(model, &format!("ending the profiler: {e}")))?;
    let file = PathBuf::from(file);
    let json = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
    let _ = std::fs::remove_file(&file);
    Ok(ProfiledRuns {
        info: s.info,
        run_ms,
        run_start_us,
        trace: EngineTrace::OrtJson { json, warmup },
    })
}

fn open_session(model: &Path, opts: &EngineOptions, profile: Option<&Path>) -> Result<OrtSession> {
    let rt = runtime(opts)?;
    std::fs::metadata(model).map_err(|e| Error::io(model, e))?;
    let mut fallbacks = Vec::new();
    let (session, provider) = commit(rt, model, opts, &mut fallbacks, profile)?;
    if session.inputs().len() != 1 {
        return Err(engine_err(
            model,
            &format!(
                "the model has {} inputs; edgebench runs single-input models",
                session.inputs().len()
            ),
        ));
    }
    let input = &session.inputs()[0];
    if let Some(t) = input.dtype().tensor_type()
        && t != ort::value::TensorElementType::Float32
    {
        return Err(engine_err(
            model,
            &format!("input {:?} is {t}, edgebench feeds float32", input.name()),
        ));
    }
    let input_name = input.name().to_string();
    if session.outputs().is_empty() {
        return Err(engine_err(model, "the model has no outputs"));
    }
    Ok(OrtSession {
        session,
        input_name,
        path: model.to_path_buf(),
        info: SessionInfo {
            engine: "ort",
            provider: provider.ort_name().to_string(),
            version: rt.version.clone(),
            fallbacks,
            input_shape: opts.input_shape.clone(),
        },
    })
}

struct OrtSession {
    session: ort::session::Session,
    input_name: String,
    path: PathBuf,
    info: SessionInfo,
}

impl Session for OrtSession {
    fn run(&mut self, input: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        self.run_all(input)?
            .into_iter()
            .next()
            .ok_or_else(|| engine_err(&self.path, "the first output is missing"))
    }

    fn run_all(&mut self, input: ArrayViewD<'_, f32>) -> Result<Vec<ArrayD<f32>>> {
        check_input_shape(&self.info, &input)?;
        let path = &self.path;
        let err = |e: ort::Error| engine_err(path, &e.to_string());
        let input = input.as_standard_layout();
        let tensor = TensorRef::from_array_view(&input).map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(err)?;
        outputs
            .values()
            .map(|v| Ok(v.try_extract_array::<f32>().map_err(err)?.to_owned()))
            .collect()
    }

    fn info(&self) -> &SessionInfo {
        &self.info
    }
}
