//! Jetson boards and their budgets (`targets/*.toml`), and verdicts against them.
//! Placeholder: being written.
